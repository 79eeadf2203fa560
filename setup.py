"""Packaging for todopy: `pip install .` gives the `todopy` command with its SQL and built front end."""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent

# SQL and the built front end live at the top of the repository (sql/, static/dist/);
# symlinks (todopy/sql, todopy/assets) make them package data, found the same way
# from a checkout and from an installed package.
packages = ["todopy", "todopy.views", "todopy.middleware", "todopy.realtime"]
package_data = {"todopy": ["sql/*.sql", "sql/queries/*.sql", "assets/index.html", "assets/sw.js", "assets/assets/*"]}

setup(
    name="todopy",
    version="0.1.0",
    description="A framework-less realtime TodoMVC server: Werkzeug, gevent, PostgreSQL LISTEN/NOTIFY",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=packages,
    package_data=package_data,
    # Every requirement is bounded above by the first major version the code has
    # not been tested with (constraints.txt holds the tested pins), so that
    # `pip install .` never picks an untested major.
    install_requires=[
        # todopy/fastpaths.py copies behaviour of these two, and server.py overrides
        # pywsgi's handler internals: bounded to the series those were tested with
        # (tests/test_fastpaths.py holds each copy to the library installed).
        "werkzeug>=3.1,<3.2",
        "gevent>=26.9,<27",
        "gevent-websocket==0.10.1",
        # psycopg2 built from source, not psycopg2-binary: pgpubsub requires the
        # `psycopg2` distribution, and the two distributions install the same
        # module, so requiring both would let pip overwrite one with the other
        # depending on install order. One distribution keeps installs
        # reproducible; it builds against libpq-dev, which `make` installs
        # (apt) when pg_config is missing. psycopg2's own docs recommend the
        # source build for production use anyway.
        "psycopg2>=2.9,<3",
        "psycogreen>=1.0.2,<2",
        "pgpubsub==0.0.5",
        # PostgreSQL 16 binaries from a wheel: the embedded database needs no apt step.
        "pgserver==0.1.4",
        # The [gevent] extra brings `packaging`, which gunicorn's gevent worker
        # imports at start (without it `todopy serve` dies).
        "gunicorn[gevent]>=23,<28",
        "prometheus-client>=0.20,<1",
    ],
    extras_require={
        "test": [
            # make test: type checking (with stubs for the untyped libraries) and the wheel test's builder.
            "mypy>=1.10,<3", "types-gevent<27", "types-gunicorn<28", "types-psycopg2<3", "build>=1.2,<2",
            "pytest>=8", "pytest-timeout>=2.3", "websocket-client>=1.8", "requests>=2.31",
            "openapi-spec-validator>=0.7", "schemathesis>=4", "playwright>=1.45",
            # The WebSocket codec is tested against wsproto (sans-IO) on generated frames.
            "wsproto>=1.2", "hypothesis>=6",
        ],
        # make bench: the plot, and the peer (bench/peer) todopy is measured beside.
        # psutil: the servers' CPU and memory (it also came with pgserver, which bench/ must not rely on).
        "bench": ["matplotlib>=3.8,<4", "fastapi>=0.160,<1", "uvicorn>=0.50,<1", "uvloop>=0.21,<1",
                  "httptools>=0.6,<1", "websockets>=15,<18", "asyncpg>=0.30,<1", "psutil>=5.9,<8"],
    },
    entry_points={"console_scripts": ["todopy=todopy.cli:main"]},
)
