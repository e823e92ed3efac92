# The main job in one command: on a fresh Debian 12 machine, install what is
# missing, build, start the simulator on a free port, purge a few URLs through
# bin/ecdn-purge, print the task id, stop the simulator.
# With real credentials the same CLI talks to the real service:
#   TENCENTCLOUD_SECRET_ID=... TENCENTCLOUD_SECRET_KEY=... bin/ecdn-purge [--service cdn] URL...

DEMO_ID ?= AKIDdemo0000000000000000000000000000
DEMO_KEY ?= demo-secret-key-not-a-real-one
DEMO_URLS ?= https://www.example.com/index.html https://www.example.com/img/logo.png \
             https://www.example.com/css/site.css

.PHONY: demo

demo: deps
	@$(MAKE) --no-print-directory all
	@set -e; dir=$$(mktemp -d); \
	trap 'kill $$(cat "$$dir/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$$dir"' EXIT INT TERM; \
	( LUA_PATH='$(LUA_PATH_DEV)' LUA_CPATH='build/?.so;;' lua5.4 bin/ecdn-sim --port 0 --rate 0 \
	    --secret '$(DEMO_ID):$(DEMO_KEY)' > "$$dir/out" 2>&1 & echo $$! > "$$dir/pid" ); \
	i=0; until grep -q '^listening on ' "$$dir/out" 2>/dev/null; do \
	  i=$$((i+1)); [ $$i -le 100 ] || { cat "$$dir/out" >&2; echo "demo: simulator did not start" >&2; exit 1; }; \
	  sleep 0.1; done; \
	url=$$(sed -n 's/^listening on //p' "$$dir/out" | head -n 1); \
	echo "simulator: $$url"; \
	echo "purging:   $(DEMO_URLS)"; \
	task=$$(env -u TENCENTCLOUD_SESSION_TOKEN TENCENTCLOUD_SECRET_ID='$(DEMO_ID)' TENCENTCLOUD_SECRET_KEY='$(DEMO_KEY)' \
	  lua5.4 bin/ecdn-purge --endpoint "$$url" $(DEMO_URLS)); \
	echo "task id:   $$task"
