// The AWS SDK for JavaScript v3 reading a profile, for tests/test_consumers.py.
//
//   node js_consumer.mjs SDK_FOLDER credentials PROFILE
//   node js_consumer.mjs SDK_FOLDER s3 PROFILE ENDPOINT BUCKET KEY
//
// Prints one JSON object on stdout; any error ends it with a stack trace and a non-zero status.
// The tests install the SDK into SDK_FOLDER, which is not above this file, so an import would
// not find it: the packages are loaded through a require() rooted there.
import { createRequire } from "node:module";

const [sdkFolder, command, profile, ...rest] = process.argv.slice(2);
const require = createRequire(`${sdkFolder}/`);
const { fromIni } = require("@aws-sdk/credential-providers");

async function credentials() {
  const found = await fromIni({ profile })();
  return {
    accessKeyId: found.accessKeyId,
    secretAccessKey: found.secretAccessKey,
    sessionToken: found.sessionToken,
    expiration: found.expiration ? found.expiration.toISOString() : null,
  };
}

async function s3(endpoint, bucket, key) {
  const { S3Client, CreateBucketCommand, PutObjectCommand, ListObjectsV2Command } = require(
    "@aws-sdk/client-s3",
  );
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: fromIni({ profile }),
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "hello" }));
  const listing = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return { keys: (listing.Contents ?? []).map((entry) => entry.Key) };
}

const commands = { credentials, s3 };
if (!(command in commands)) {
  throw new Error(`unknown command ${command}; expected one of ${Object.keys(commands)}`);
}
console.log(JSON.stringify(await commands[command](...rest)));
