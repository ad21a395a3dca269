-- Request mix for make_corpus.sh: a shop front mostly served fine by its backend, with a few
-- routes that go to a slow report service (504 after proxy_read_timeout) or to a checkout
-- service with nothing listening (502: connection refused, then "no live upstreams").
-- Clients are spread over made-up addresses through X-Real-IP (nginx's realip module trusts
-- 127.0.0.1), so $remote_addr varies as behind a load balancer.

local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
  "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
  "okhttp/4.12.0",
  "python-requests/2.31.0",
  "kube-probe/1.29",
}
local referers = { "-", "-", "https://shop.example.com/", "https://shop.example.com/cart", "https://www.google.com/" }

math.randomseed(os.time())

local function pick(t) return t[math.random(#t)] end

request = function()
  local r = math.random(10000)
  local method, path, body = "GET", nil, nil
  if r <= 7600 then
    path = "/api/items/" .. math.random(5000)
  elseif r <= 8400 then
    method, path, body = "POST", "/api/cart", '{"item":' .. math.random(5000) .. ',"qty":1}'
  elseif r <= 9200 then
    path = "/static/app." .. string.format("%06x", math.random(0xffffff)) .. ".js"
  elseif r <= 9650 then
    path = "/search?q=" .. pick({ "shoes", "socks", "hat", "coat", "bag" }) .. "&page=" .. math.random(9)
  elseif r <= 9800 then
    path = "/checkout/" .. math.random(100000)
  elseif r <= 9850 then
    path = "/report/export?day=" .. math.random(28)
  elseif r <= 9950 then
    path = "/report/daily"
  else
    path = "/wp-login.php"
  end
  local headers = {
    ["Host"] = "shop.example.com",
    ["User-Agent"] = pick(agents),
    ["X-Real-IP"] = "10." .. math.random(0, 3) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254),
  }
  local ref = pick(referers)
  if ref ~= "-" then headers["Referer"] = ref end
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end
