// A plain-Node Lambda runtime-API loop for handlers.mjs: the requests aws-lambda-ric makes
// (next, response, error, init/error), without its native client. The benchmark uses it only
// where aws-lambda-ric does not build, and says so. PEER_OPERATION: "link" or "webhook".

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;

let handler;
try {
  const handlers = await import("./handlers.mjs");
  handler = process.env.PEER_OPERATION === "webhook" ? handlers.webhook : handlers.link;
} catch (error) {
  await fetch(`${api}/init/error`, {
    method: "POST",
    body: JSON.stringify({ errorMessage: String(error), errorType: "InitError" }),
  });
  process.exit(1);
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const event = await next.json();
  try {
    const result = await handler(event);
    await fetch(`${api}/invocation/${id}/response`, { method: "POST", body: JSON.stringify(result) });
  } catch (error) {
    await fetch(`${api}/invocation/${id}/error`, {
      method: "POST",
      body: JSON.stringify({ errorMessage: String(error), errorType: "Error" }),
    });
  }
}
