-- POSTs for wrk, each with the next line of the file WRK_BODIES as its JSON body, in order: for
-- requests that carry something used once (a predictionId). After the last line it starts
-- again, so the file must hold more lines than the run sends.
local bodies = {}
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
local sent = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  sent = sent % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[sent])
end
