-- wrk script of scripts/bench-serve: replays pre-generated raw requests (signed, encrypted,
-- one MsgId each; `bench_peer gen` writes them) and checks every answer.
--
-- Environment:
--   WEMP_BENCH_REQUESTS  file prefix; thread k reads PREFIX.k (records: "<length>\n<bytes>")
--   WEMP_BENCH_EXPECT    the prefix every answer's body must start with (status 200 too)
--
-- A thread that runs out of requests starts over (the repeats reuse MsgIds, so a wemp
-- server answers them from its dedup cache): `repeated` in the result line counts them, and
-- the script warns when a wemp run had any. With WEMP_BENCH_ONCE=DIR a thread stops instead
-- once every one of its requests has been answered (the few sent meanwhile to keep its
-- connections busy are repeats), and says so in the file DIR/done.<thread> (wrk itself
-- runs on until its duration is up or it gets SIGINT).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local prefix = assert(os.getenv("WEMP_BENCH_REQUESTS"), "WEMP_BENCH_REQUESTS is not set")
  local f = assert(io.open(prefix .. "." .. id, "rb"))
  reqs = {}
  while true do
    local len = f:read("*l")
    if not len then break end
    reqs[#reqs + 1] = f:read(tonumber(len))
  end
  f:close()
  assert(#reqs > 0, "no requests in " .. prefix .. "." .. id)
  count = #reqs
  expect = os.getenv("WEMP_BENCH_EXPECT") or ""
  once = os.getenv("WEMP_BENCH_ONCE")
  sent, answered, bad, first_bad = 0, 0, 0, ""
end

function request()
  sent = sent + 1
  return reqs[(sent - 1) % count + 1]
end

function response(status, headers, body)
  answered = answered + 1
  if once and answered == count then
    local f = io.open(once .. "/done." .. id, "w")
    if f then f:close() end
    wrk.thread:stop()
  end
  if status ~= 200 or body:sub(1, #expect) ~= expect then
    bad = bad + 1
    if first_bad == "" then
      first_bad = status .. " " .. body:sub(1, 120):gsub("%s+", " ")
    end
  end
end

function done(summary, latency, requests)
  local bad, repeated, first_bad = 0, 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("bad")
    repeated = repeated + math.max(0, t:get("sent") - t:get("count"))
    if first_bad == "" then first_bad = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d socket_errors=%d status_errors=%d bad=%d repeated=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status, bad, repeated))
  if first_bad ~= "" then
    io.write("FIRST_BAD " .. first_bad .. "\n")
  end
end
