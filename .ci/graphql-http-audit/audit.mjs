// Audits a GraphQL-over-HTTP server with graphql-http's server audits
// (https://github.com/graphql/graphql-http#audits) and prints every result, one per line:
//
//   <ok|error|warn|notice> <id> <MUST|SHOULD|MAY ...> [— reason]
//
// error is a failed MUST, warn a failed SHOULD, notice a failed MAY. It exits 1 when any MUST
// failed, 2 on bad usage or when the audit itself could not run.
//
//   node audit.mjs http://127.0.0.1:8071/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <url of the GraphQL endpoint>');
  process.exit(2);
}

let results;
try {
  results = await auditServer({ url });
} catch (err) {
  console.error('audit could not run:', err);
  process.exit(2);
}

const failed = { error: 0, warn: 0, notice: 0 };
for (const r of results) {
  let line = `${r.status} ${r.id} ${r.name}`;
  if (r.status !== 'ok') {
    failed[r.status]++;
    line += ` — ${r.reason} (HTTP ${r.response?.status})`;
  }
  console.log(line);
}
console.log(`${results.length} audits: ${failed.error} MUST, ${failed.warn} SHOULD, ${failed.notice} MAY failed`);
process.exit(failed.error > 0 ? 1 : 0);
