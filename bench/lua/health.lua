-- A fixed GET of the URL's path (/health, /users/me with -H, the bare ASGI app): no
-- request() function, so wrk sends its prebuilt request and costs the least per call.
require "common"
