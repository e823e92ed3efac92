std = "max"
max_line_length = 120
files["spec"] = { std = "+busted" }
exclude_files = { "build", ".luarocks", "lua_modules" }
files["lua/resty"] = { read_globals = { "ngx" } } -- resty.ecdn runs inside nginx (lua-nginx-module)
