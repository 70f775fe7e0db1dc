-- The benchmark's request: client_credentials with client_secret_basic, a
-- resource indicator and one scope. The token path is the URL's path.
-- Optional: RATE (requests per second over all connections) paces each
-- connection, for fixed-load runs; CONNECTIONS must then match wrk's -c.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
-- acme-sync:demo-acme-secret-do-not-use-in-production
wrk.headers["Authorization"] =
  "Basic YWNtZS1zeW5jOmRlbW8tYWNtZS1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u"
wrk.body = "grant_type=client_credentials&resource=https%3A%2F%2Forders.example.com&scope=read%3Aorders"

local rate = tonumber(os.getenv("RATE") or "")
local connections = tonumber(os.getenv("CONNECTIONS") or "")
if rate and connections then
  local gap = 1000 * connections / rate
  function delay()
    return gap
  end
end
