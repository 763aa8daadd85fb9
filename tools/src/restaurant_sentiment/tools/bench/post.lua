-- A POST with a fixed body for wrk: the body and its type come from the environment, the other
-- headers (Host, HX-Request) from wrk's -H flags. wrk keeps no cookies: every request is new.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")
