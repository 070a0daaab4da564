from credproc.cli import main

raise SystemExit(main())
