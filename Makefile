# The two commands of the README: `make run` and `make test`. Everything else is a step of them.
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test install install-dev translations chromium media-tools lint

# The web process and, beside it, the consumer of background tasks (huey, on the SQLite queue
# under instance/). Ctrl-C stops both: the trap stops the consumer whenever the server ends.
run: install
	$(FLASK) db upgrade
	$(FLASK) fair demo
	@echo "The fair is at http://127.0.0.1:5000 (organiser: organiser@fair.example / organiser-demo)"
	$(BIN)/huey_consumer wsgi.huey --workers 2 --max-delay 1 --quiet & consumer=$$!; \
	trap 'kill $$consumer 2>/dev/null; wait $$consumer' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install-dev chromium media-tools
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

$(BIN)/python:
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

install: $(VENV)/.installed node_modules/.package-lock.json translations

install-dev: $(VENV)/.installed-dev node_modules/.package-lock.json translations

translations:
	$(BIN)/pybabel compile -d fair/translations -f > /dev/null

# Debian's Chromium for the browser tests; Playwright's own download cannot reach its host here.
# A CJK font too, or the screenshots show Chinese as empty boxes.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
chromium:
	@test -x /usr/bin/chromium -a -f $(CJK_FONT) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei)

# The media server the streaming tests push through (nginx with Debian's RTMP module), and
# ffmpeg, which pushes test patterns, remuxes recordings into replays and makes the demo videos.
RTMP_MODULE := /usr/lib/nginx/modules/ngx_rtmp_module.so
media-tools:
	@test -x /usr/sbin/nginx -a -f $(RTMP_MODULE) -a -x /usr/bin/ffmpeg || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-rtmp ffmpeg)

# ruff, and the import contracts of pyproject.toml (which package may import which).
lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports
