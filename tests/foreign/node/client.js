// A pachd client in Node.js, made from nothing but the client's .proto files
// (client/pachyderm_client/proto/) and the
// stock @grpc/grpc-js and @grpc/proto-loader. Usage:
//   node client.js HOST:PORT REPO SIZE
// creates REPO, starts a commit on master, streams SIZE bytes into "data" in
// 256 KiB chunks, finishes the commit, reads the file back, lists the repo's
// commits, and prints one JSON object describing what it saw.

"use strict";

const path = require("path");
const crypto = require("crypto");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, repo, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
const root = path.resolve(__dirname, "..", "..", "..", "client");
const definition = protoLoader.loadSync([path.join(root, "pachyderm_client", "proto", "pfs.proto")], {
  includeDirs: [root],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const pfs = grpc.loadPackageDefinition(definition).pfs;
const api = new pfs.API(address, grpc.credentials.createInsecure());

function call(method, request) {
  return new Promise((resolve, reject) => {
    api[method](request, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

function content(n) {
  // Deterministic bytes: the test computes the same SHA-256 on its side.
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + 3) % 251;
  return out;
}

function putFile(commit, file, data) {
  return new Promise((resolve, reject) => {
    const stream = api.PutFile((err) => (err ? reject(err) : resolve()));
    const chunk = 256 * 1024;
    for (let offset = 0; offset < data.length; offset += chunk) {
      const request = { value: data.subarray(offset, offset + chunk) };
      if (offset === 0) {
        Object.assign(request, { file: { commit, path: file }, file_type: "FILE_TYPE_REGULAR" });
      }
      stream.write(request);
    }
    stream.end();
  });
}

function getFile(commit, file) {
  return new Promise((resolve, reject) => {
    const parts = [];
    const stream = api.GetFile({ file: { commit, path: file } });
    stream.on("data", (value) => parts.push(value.value));
    stream.on("error", reject);
    stream.on("end", () => resolve(Buffer.concat(parts)));
  });
}

async function main() {
  await call("CreateRepo", { repo: { name: repo } });
  const commit = await call("StartCommit", { parent: { repo: { name: repo }, id: "master" } });
  const data = content(size);
  await putFile(commit, "data", data);
  await call("FinishCommit", { commit });
  const back = await getFile(commit, "data");
  const listed = await call("ListCommit", { from_commits: [{ repo: { name: repo } }] });
  let missing = "";
  try {
    await call("InspectRepo", { repo: { name: "no_such_repo" } });
  } catch (err) {
    missing = grpc.status[err.code];
  }
  const hash = (bytes) => crypto.createHash("sha256").update(bytes).digest("hex");
  console.log(JSON.stringify({
    commit: commit.id,
    sent_sha256: hash(data),
    read_sha256: hash(back),
    read_bytes: back.length,
    commits: listed.commit_info.map((info) => ({
      id: info.commit.id,
      size_bytes: Number(info.size_bytes),
      finished: info.finished !== null,
    })),
    missing_repo_status: missing,
  }));
  api.close();
}

main().catch((err) => {
  console.error(`node client failed: ${err.message}`);
  process.exit(1);
});
