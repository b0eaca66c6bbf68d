# The README's two commands. Each bootstraps .venv from nothing (scripts/bootstrap).
.PHONY: demo test
demo:
	./scripts/demo
test:
	./scripts/test
