# Simulator targets. `make sim` runs bin/ecdn-sim in the foreground (Ctrl-C
# stops it); pass options with SIM_ARGS, e.g. make sim SIM_ARGS='--port 8080 --rate 0'.
# `make bench-sim` measures its throughput (bench/sim_throughput.lua).
SIM_ARGS ?= --port 0
SIM_BENCH_SECONDS ?= 5

.PHONY: sim bench-sim

sim: $(MODULE)
	$(RUN54) lua5.4 bin/ecdn-sim $(SIM_ARGS)

bench-sim: $(MODULE)
	$(RUN54) lua5.4 bench/sim_throughput.lua $(SIM_BENCH_SECONDS)
