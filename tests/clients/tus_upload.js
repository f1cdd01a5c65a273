// One tus-js-client upload of a file on disk to casevars (tests/test_tus_clients.py and
// tests/test_tus_faults.py run it). CASEVARS_TUS holds the scenario as JSON:
//   endpoint      the creation URL (.../case-instance/{id}/variables/{name}/uploads)
//   file          the path of the file to upload (read as an fs.ReadStream, so that the
//                 client fingerprints it by path, size and mtime)
//   metadata      Upload-Metadata as an object (filename, filetype, ...)
//   urlStorage    a JSON file where the client stores upload URLs by fingerprint, and
//                 finds them again in a later run (resume after the client stopped)
//   chunkSize     bytes per PATCH (the client's default, one PATCH for the rest, if absent)
//   retryDelays   milliseconds between retries (the client's default if absent)
//   terminate     after the upload, terminate it (DELETE on its URL)
// It prints as its last line {"url", "exchanges": [{method, status, offset}],
// "resumedFrom", "terminated"} or {"error", "status", "body", "exchanges"}.
'use strict';

const fs = require('fs');
const tus = require('tus-js-client');

const scenario = JSON.parse(process.env.CASEVARS_TUS);
const exchanges = [];

function print(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function options(resolve, reject) {
  const chosen = {
    endpoint: scenario.endpoint,
    metadata: scenario.metadata || {},
    onAfterResponse(req, res) {
      const offset = res.getHeader('Upload-Offset');
      exchanges.push({
        method: req.getMethod(),
        status: res.getStatus(),
        offset: offset === undefined || offset === null ? null : Number(offset),
      });
    },
    onSuccess: () => resolve(),
    onError: (error) => reject(error),
  };
  if (scenario.urlStorage) chosen.urlStorage = new tus.FileUrlStorage(scenario.urlStorage);
  if (scenario.chunkSize !== undefined) chosen.chunkSize = scenario.chunkSize;
  if (scenario.retryDelays !== undefined) chosen.retryDelays = scenario.retryDelays;
  return chosen;
}

async function main() {
  let upload;
  let resumedFrom = null;
  await new Promise((resolve, reject) => {
    upload = new tus.Upload(fs.createReadStream(scenario.file), options(resolve, reject));
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (previous.length > 0) {
          resumedFrom = previous[0].uploadUrl;
          upload.resumeFromPreviousUpload(previous[0]);
        }
        upload.start();
      })
      .catch(reject);
  });
  let terminated = null;
  if (scenario.terminate) {
    await tus.Upload.terminate(upload.url, { retryDelays: [] });
    terminated = upload.url;
  }
  print({ url: upload.url, exchanges, resumedFrom, terminated });
}

main().catch((error) => {
  const response = error.originalResponse;
  print({
    error: String(error),
    status: response ? response.getStatus() : null,
    body: response ? response.getBody() : null,
    exchanges,
  });
  process.exit(1);
});
