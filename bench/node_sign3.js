// The official Node SDK's TC3 signer (Sign.sign3 of tencentcloud-sdk-nodejs),
// on the same varying inputs as bench/sign.lua --tsv: a different one-URL
// payload and timestamp on every call, key and service fixed.
//   node bench/node_sign3.js SDK_DIR [seconds] [--tsv]
// SDK_DIR is a directory whose node_modules holds tencentcloud-sdk-nodejs
// (`make bench` installs it into a temporary directory, never the repo).
// Rates per second of CPU time (the process's, its collector threads
// included) and per second of wall-clock time (the collector runs beside it
// on another core).
"use strict";
const path = require("path");

const dir = process.argv[2];
const seconds = Number(process.argv[3] || 2);
const tsv = process.argv.includes("--tsv");
if (!dir) {
  console.error("usage: node bench/node_sign3.js SDK_DIR [seconds] [--tsv]");
  process.exit(2);
}
const sdk = path.join(dir, "node_modules", "tencentcloud-sdk-nodejs");
const Sign = require(path.join(sdk, "tencentcloud", "common", "sign.js")).default;
const version = require(path.join(sdk, "package.json")).version;

// A Buffer payload is hashed as given, as our signer hashes the body string.
const N = 1024;
const payloads = [];
for (let i = 0; i < N; i++) {
  payloads.push(Buffer.from(`{"Urls":["https://www.example.com/static/${String(i).padStart(6, "0")}.jpg"]}`));
}
const headers = { "Content-Type": "application/json" };

// Known answer first: the official vector A of the signing documentation.
const a = Sign.sign3({
  method: "POST", url: "https://cvm.tencentcloudapi.com/", service: "cvm", timestamp: 1551113065,
  secretId: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
  headers: { "Content-Type": "application/json; charset=utf-8" },
  payload: Buffer.from('{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'),
});
if (!a.endsWith("Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")) {
  console.error("node_sign3: the SDK does not reproduce vector A: " + a);
  process.exit(1);
}

// CPU time of the process (all its threads, the collector's included), as
// bench/sign.lua and bench/sign_floor.c measure theirs.
function cpuSeconds(since) {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}
let ts = 1795820000, n = 0, sink = 0, dt = 0;
function sign(k) {
  return Sign.sign3({
    method: "POST", url: "https://ecdn.tencentcloudapi.com/", payload: payloads[k % N], timestamp: ts++,
    service: "ecdn", secretId: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    secretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", headers,
  });
}
for (let i = 0; i < 20000; i++) sink += sign(i).length; // the JIT's warm-up, not timed
// Batches of 1,000 (milliseconds each: the collector's work is in them); the rate is that of the fastest tenth of them (the machine
// is shared: an interrupted batch says nothing about the code).
const cpuSamples = [], wallSamples = [];
const t0 = process.cpuUsage();
let c0 = t0, w0 = process.hrtime.bigint();
while (dt < seconds) {
  for (let i = 0; i < 1000; i++) {
    sink += sign(n).length;
    n++;
  }
  const c1 = process.cpuUsage(), w1 = process.hrtime.bigint();
  cpuSamples.push((c1.user - c0.user + c1.system - c0.system) / 1e6);
  wallSamples.push(Number(w1 - w0) / 1e9);
  c0 = c1;
  w0 = w1;
  dt = cpuSeconds(t0);
}
function fastDecile(a) {
  a.sort((x, y) => x - y);
  return a[Math.floor(a.length / 10)];
}
const rate = 1000 / fastDecile(cpuSamples), wallRate = 1000 / fastDecile(wallSamples);
if (sink === 0) console.log("");
if (tsv) {
  console.log(`node_sign3\t${rate.toFixed(0)}`);
  console.log(`node_sign3_wall\t${wallRate.toFixed(0)}`);
  console.log(`node_sdk\tnode ${process.version}, tencentcloud-sdk-nodejs ${version}`);
} else {
  console.log(`Node SDK ${version} sign3 (node ${process.version}): ${rate.toFixed(0)} signatures/s of CPU ` +
    `time (${(1e6 / rate).toFixed(2)} us each), ${wallRate.toFixed(0)}/s of wall-clock time`);
}
