#!/usr/bin/env node
// Checks the uptime-kuma monitors that docs/monitoring.md documents against a running proxy,
// the way uptime-kuma itself decides UP or DOWN, so that the documented settings cannot drift
// from what works.
//
//   node check_monitors.js --doc docs/monitoring.md --origin https://127.0.0.1:PORT
//
// The monitors are read from the doc: every table with a "Monitor Type" row is one monitor, its
// rows are the form fields. The URL's scheme, host and port are replaced by --origin (the doc
// names an example host), its path is kept. For each monitor it prints one line,
// "<UP|DOWN> <monitor type> <url> <message>", and a JSON Query monitor is judged twice: as
// uptime-kuma 2.x does (jsonata, the result compared as a string with the chosen condition) and
// as 1.23 does (result.toString() === expected value). Exit status: 0 when it could judge every
// monitor, whatever the verdicts; 2 when the doc or the command line is unusable.
//
// TLS trust comes from NODE_EXTRA_CA_CERTS, exactly as for uptime-kuma: nothing here adds a CA.
"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const jsonata = require("jsonata");

// uptime-kuma's defaults for an HTTP(s) monitor.
const kMaxRedirects = 10;
const kTimeoutMs = 48000;

function usage(message) {
  process.stderr.write(`check_monitors: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
      usage(`bad argument ${argv[i]}`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  if (!args.doc || !args.origin) {
    usage("expected --doc FILE --origin SCHEME://HOST:PORT");
  }
  return args;
}

// A cell's value: the text inside its first backticks, else the cell itself.
function cellValue(cell) {
  const quoted = /`([^`]*)`/.exec(cell);
  return (quoted ? quoted[1] : cell).trim();
}

// Every table with a "Monitor Type" row: {field: value}.
function monitorsOf(markdown) {
  const monitors = [];
  let current = null;
  for (const line of markdown.split("\n")) {
    const row = /^\|\s*([^|]+?)\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (!row) {
      current = null;
      continue;
    }
    if (row[1] === "Monitor Type") {
      current = {};
      monitors.push(current);
    }
    if (current) {
      current[row[1]] = cellValue(row[2]);
    }
  }
  return monitors;
}

// "200-299" or "200": is `status` accepted?
function statusAccepted(status, accepted) {
  return accepted.split(",").some((item) => {
    const [low, high] = item.trim().split("-").map(Number);
    return high === undefined ? status === low : status >= low && status <= high;
  });
}

function get(url, redirectsLeft) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : http;
    const request = client.get(url, { headers: { Accept: "*/*" }, timeout: kTimeoutMs }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
          if (redirectsLeft === 0) {
            reject(new Error(`more than ${kMaxRedirects} redirects`));
            return;
          }
          resolve(get(new URL(res.headers.location, url).toString(), redirectsLeft - 1));
          return;
        }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    request.on("timeout", () => request.destroy(new Error(`timeout after ${kTimeoutMs} ms`)));
    request.on("error", reject);
  });
}

// uptime-kuma 2.x: the expression's result must be a scalar; it is compared as a string.
async function judgeKuma2(data, expression, operator, expected) {
  const result = await jsonata(expression).evaluate(data);
  if (result === null || result === undefined) {
    return { up: false, message: "the expression gave no value" };
  }
  if (typeof result === "object" || typeof result === "function") {
    return { up: false, message: `the expression gave a ${typeof result}, not a value` };
  }
  const comparisons = {
    "==": "$.value = $.expected",
    "!=": "$.value != $.expected",
    contains: "$contains($.value, $.expected)",
    "<": "$number($.value) < $number($.expected)",
    "<=": "$number($.value) <= $number($.expected)",
    ">": "$number($.value) > $number($.expected)",
    ">=": "$number($.value) >= $number($.expected)",
  };
  if (!comparisons[operator]) {
    return { up: false, message: `unknown condition ${operator}` };
  }
  const passed = await jsonata(comparisons[operator]).evaluate({
    value: result.toString(),
    expected: expected.toString(),
  });
  return { up: passed === true, message: `${result} ${operator} ${expected}` };
}

// uptime-kuma 1.23: plain string equality with the expected value.
async function judgeKuma123(data, expression, expected) {
  const result = await jsonata(expression).evaluate(data);
  if (result === null || result === undefined) {
    return { up: false, message: "the expression gave no value" };
  }
  return { up: result.toString() === expected, message: `[${result}] === [${expected}]` };
}

async function check(monitor, origin) {
  const type = monitor["Monitor Type"];
  const documented = new URL(monitor.URL);
  const url = new URL(documented.pathname + documented.search, origin).toString();
  const accepted = monitor["Accepted Status Codes"] || "200-299";
  const lines = [];
  let answer;
  try {
    answer = await get(url, kMaxRedirects);
  } catch (e) {
    return [`DOWN ${type} ${url} no answer: ${e.message}`];
  }
  if (!statusAccepted(answer.status, accepted)) {
    return [`DOWN ${type} ${url} status ${answer.status} is not in ${accepted}`];
  }
  if (type === "HTTP(s)") {
    return [`UP ${type} ${url} status ${answer.status}`];
  }
  if (type !== "HTTP(s) - Json Query") {
    usage(`unknown Monitor Type "${type}" in the doc`);
  }
  let data;
  try {
    data = JSON.parse(answer.body);
  } catch (e) {
    return [`DOWN ${type} ${url} the body is not JSON: ${e.message}`];
  }
  const expression = monitor["Json Query Expression"];
  const operator = monitor.Condition;
  const expected = monitor["Expected Value"];
  if (!expression || !operator || expected === undefined) {
    usage(`the ${type} monitor for ${monitor.URL} lacks Json Query Expression, Condition or ` +
      "Expected Value");
  }
  for (const [label, judge] of [
    ["2.x", () => judgeKuma2(data, expression, operator, expected)],
    ["1.23", () => judgeKuma123(data, expression, expected)],
  ]) {
    try {
      const verdict = await judge();
      lines.push(`${verdict.up ? "UP" : "DOWN"} ${type} ${url} kuma-${label}: ${verdict.message}`);
    } catch (e) {
      lines.push(`DOWN ${type} ${url} kuma-${label}: ${e.message}`);
    }
  }
  return lines;
}

async function main() {
  const args = parseArgs(process.argv);
  const monitors = monitorsOf(fs.readFileSync(args.doc, "utf8"));
  if (monitors.length === 0) {
    usage(`no monitor tables (a "Monitor Type" row) in ${args.doc}`);
  }
  for (const monitor of monitors) {
    for (const line of await check(monitor, args.origin)) {
      process.stdout.write(line + "\n");
    }
  }
}

main().catch((e) => usage(e.stack || String(e)));
