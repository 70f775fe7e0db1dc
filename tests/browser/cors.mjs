// Calls Tessera from a web page in headless Chromium, the way a single-page
// application does: fetch() from the page's own origin, which the browser
// enforces CORS on. Driven by tests/integration/browser.rs, which starts
// Tessera with `allowed_origins = ["http://127.0.0.1:PAGE_PORT"]` for the
// SPA client and checks the JSON line this prints.
//
// The page is served on PAGE_PORT here; the same page under
// http://localhost:PAGE_PORT is another origin, one no client lists.
//
// Usage: node cors.mjs TESSERA_BASE_URL PAGE_PORT ACCESS_TOKEN
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const [base, pagePort, accessToken] = process.argv.slice(2);
const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>app</title><p>an application</p>");
});
await new Promise((ok) => server.listen(Number(pagePort), "127.0.0.1", ok));

// Runs in the page: each call's outcome, or "blocked" when the browser
// refused to let the page read the answer.
const calls = async ({ base, accessToken }) => {
  const attempt = async (f) => {
    try {
      return await f();
    } catch (e) {
      return e instanceof TypeError ? "blocked" : `error: ${e}`;
    }
  };
  const form = new URLSearchParams({
    grant_type: "authorization_code", client_id: "web-spa", code: "not-a-code",
    redirect_uri: "https://app.example.com/callback", code_verifier: "x".repeat(43),
  });
  return {
    discovery: await attempt(async () => (await (await fetch(`${base}/.well-known/openid-configuration`)).json()).issuer),
    jwks: await attempt(async () => (await (await fetch(`${base}/.well-known/jwks.json`)).json()).keys.length),
    token: await attempt(async () => {
      const r = await fetch(`${base}/oauth/token`, { method: "POST", body: form });
      return { status: r.status, error: (await r.json()).error };
    }),
    // The Authorization header makes the browser send a preflight first.
    userinfo: await attempt(async () => {
      const r = await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });
      return { status: r.status, sub: (await r.json()).sub };
    }),
    userinfoError: await attempt(async () => {
      const r = await fetch(`${base}/userinfo`, { headers: { authorization: "Bearer nope" } });
      return { status: r.status, challenge: r.headers.get("www-authenticate") };
    }),
    // Tessera never allows credentials: the page cannot send its cookies.
    withCookies: await attempt(async () => (await fetch(`${base}/userinfo`, {
      headers: { authorization: `Bearer ${accessToken}` }, credentials: "include",
    })).status),
  };
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${pagePort}/`);
  const allowed = await page.evaluate(calls, { base, accessToken });
  await page.goto(`http://localhost:${pagePort}/`);
  const other = await page.evaluate(calls, { base, accessToken });
  console.log(JSON.stringify({ allowed, other }));
} finally {
  await browser.close();
  server.close();
}
