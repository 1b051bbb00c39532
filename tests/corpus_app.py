"""An application that imports and uses many popular packages, and reloads nothing.

tests/test_corpus.py copies this file into a scratch directory and imports it in a child
interpreter; afterwards ``reloadscope.scan()`` must report no stale object at all.  Everything
is defined at module level, as an application would (classes bound in this module's namespace,
instances kept in its globals), so that whatever a package builds at import or at use is alive
when the scan runs.

Each package is used inside ``with use(NAME):``.  A package that is not installed for this
interpreter lands in ``MISSING``; any other exception (the package is there but using it failed)
lands in ``BROKEN``; ``USED`` maps each package that worked to the seconds it took.
No network: every client talks to an in-process transport or test client.
"""

import os
import sys
import time
import traceback

USED: dict[str, float] = {}
MISSING: dict[str, str] = {}
BROKEN: dict[str, str] = {}

# Where IPython, Jupyter and friends may write (the test points these at its scratch directory).
SCRATCH = os.environ.get("CORPUS_SCRATCH") or os.path.dirname(os.path.abspath(__file__))


class use:
    """``with use("attrs"): import attrs; ...``: records how using one package went."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "use":
        self.start = time.perf_counter()
        return self

    def __exit__(self, tp, exc, tb):  # type: ignore[no-untyped-def]
        if tp is None:
            USED[self.name] = round(time.perf_counter() - self.start, 3)
        elif issubclass(tp, ModuleNotFoundError) and exc.name and not _installed(exc.name):
            MISSING[self.name] = f"{tp.__name__}: {exc}"
        elif issubclass(tp, Exception):
            BROKEN[self.name] = "".join(traceback.format_exception(tp, exc, tb))[-2000:]
        else:
            return False
        return True


def _installed(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


# ----------------------------------------------------------------------------- live reload

# jurigged comes first, as `python -m jurigged app.py` would have it: it watches this file, keeps
# a registry of code and functions, and an audit hook sees every module body that runs after it.
with use("jurigged"):
    import jurigged

    WATCHER = jurigged.watch(pattern=os.path.abspath(__file__), logger=lambda event: None)

# ---------------------------------------------------------------------------------- stdlib

with use("dataclasses"):
    import dataclasses

    @dataclasses.dataclass
    class Order:
        item: str
        quantity: int = 1

    @dataclasses.dataclass(slots=True)
    class SlotPoint:
        x: float
        y: float = 0.0

        def length(self) -> float:
            return (self.x**2 + self.y**2) ** 0.5

    @dataclasses.dataclass(frozen=True, slots=True)
    class FrozenSlot:
        key: str

    ORDER = Order("tea", 2)
    SLOT_POINT = SlotPoint(3.0, 4.0)
    FROZEN = {FrozenSlot("a"): 1}
    assert SLOT_POINT.length() == 5.0 and dataclasses.asdict(ORDER)["quantity"] == 2
    assert dataclasses.replace(SLOT_POINT, y=0.0).length() == 3.0

with use("enum"):
    import enum

    class Color(enum.Enum):
        RED = 1
        GREEN = 2

        @property
        def pretty(self) -> str:
            return self.name.title()

    class Perm(enum.IntFlag):
        R = 4
        W = 2
        X = 1

    class Size(str, enum.Enum):
        S = "s"
        L = "l"

    assert Color(2).pretty == "Green" and (Perm.R | Perm.W) == 6 and Size("l") is Size.L

with use("typing"):
    import typing

    T = typing.TypeVar("T")

    class Movie(typing.TypedDict):
        title: str
        year: int

    class Pair(typing.NamedTuple):
        left: int
        right: int

    @typing.runtime_checkable
    class Closable(typing.Protocol):
        def close(self) -> None: ...

    class Box(typing.Generic[T]):
        def __init__(self, item: T) -> None:
            self.item = item

    @typing.overload
    def double(x: int) -> int: ...
    @typing.overload
    def double(x: str) -> str: ...
    def double(x):  # type: ignore[no-untyped-def]
        return x * 2

    MOVIE: Movie = {"title": "Up", "year": 2009}
    INT_BOX = Box[int](3)
    ORDERS = typing.List[Order]  # noqa: UP006 (typing's cache of subscriptions)
    assert Pair(1, 2).right == 2 and double("ab") == "abab" and isinstance(INT_BOX.item, int)
    assert typing.get_type_hints(Movie)["year"] is int

with use("ctypes"):
    import ctypes

    class CPoint(ctypes.Structure):
        _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int)]

    class BEHeader(ctypes.BigEndianStructure):
        _fields_ = [("magic", ctypes.c_uint32), ("size", ctypes.c_uint16)]

    LIBC = ctypes.CDLL(None)
    LIBC.abs.argtypes = [ctypes.c_int]
    C_POINT = CPoint(1, 2)
    HEADER = BEHeader.from_buffer_copy(b"\x00\x00\x00\x2a\x00\x10\x00\x00")
    assert LIBC.abs(-7) == 7 and HEADER.magic == 42 and ctypes.sizeof(C_POINT) == 8

with use("zoneinfo"):
    import datetime
    import zoneinfo

    UTC = zoneinfo.ZoneInfo("UTC")
    NOON = datetime.datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert NOON.utcoffset() == datetime.timedelta(0)

# ------------------------------------------------------------------------- data and validation

with use("attrs"):
    import attr
    import attrs

    @attrs.define
    class Point:
        x: int
        y: int = 0

        def norm(self) -> int:
            return abs(self.x) + abs(self.y)

    @attrs.frozen
    class Money:
        amount: int = attrs.field(validator=attrs.validators.ge(0))
        currency: str = "EUR"

    @attr.s(auto_attribs=True)
    class Legacy:
        name: str
        tags: list = attr.Factory(list)

    POINT = Point(3, -4)
    PRICE = Money(5)
    LEGACY = Legacy("x")
    assert POINT.norm() == 7 and attrs.asdict(PRICE) == {"amount": 5, "currency": "EUR"}
    assert attrs.evolve(POINT, y=1) == Point(3, 1) and LEGACY.tags == []

with use("pydantic"):
    import pydantic

    class Address(pydantic.BaseModel):
        city: str
        zip_code: str = pydantic.Field(pattern=r"^\d{5}$")

    class User(pydantic.BaseModel):
        id: int
        name: str
        email: str | None = None
        addresses: list[Address] = []

        @pydantic.field_validator("name")
        @classmethod
        def strip_name(cls, v: str) -> str:
            return v.strip()

    USER = User.model_validate(
        {"id": "7", "name": " Ada ", "addresses": [{"city": "Paris", "zip_code": "75001"}]}
    )
    INTS = pydantic.TypeAdapter(list[int])
    assert USER.id == 7 and USER.name == "Ada" and INTS.validate_python(["1", 2]) == [1, 2]
    assert User.model_validate_json(USER.model_dump_json()) == USER
    try:
        Address(city="x", zip_code="no")
    except pydantic.ValidationError:
        pass
    else:
        raise AssertionError("pydantic did not validate")

with use("marshmallow"):
    import marshmallow

    class ArtistSchema(marshmallow.Schema):
        name = marshmallow.fields.Str(required=True)
        born = marshmallow.fields.Date()
        tags = marshmallow.fields.List(marshmallow.fields.Str())

    ARTIST_SCHEMA = ArtistSchema()
    ARTIST = ARTIST_SCHEMA.load({"name": "Miles", "born": "1926-05-26", "tags": ["jazz"]})
    assert ARTIST["born"].year == 1926 and ARTIST_SCHEMA.dump(ARTIST)["name"] == "Miles"

with use("yaml"):
    import yaml

    class Monster(yaml.YAMLObject):
        yaml_tag = "!Monster"
        yaml_loader = yaml.SafeLoader

        def __init__(self, name: str, hp: int) -> None:
            self.name = name
            self.hp = hp

    CONFIG = yaml.safe_load("server:\n  port: 8080\n  hosts: [a, b]\n")
    MONSTER = yaml.load("!Monster {name: Dragon, hp: 16}", Loader=yaml.SafeLoader)
    assert CONFIG["server"]["port"] == 8080 and MONSTER.hp == 16
    assert yaml.safe_load(yaml.safe_dump(CONFIG)) == CONFIG

with use("lxml"):
    import lxml.etree
    import lxml.html

    FEED = lxml.etree.fromstring(b"<feed><entry id='1'>a</entry><entry id='2'>b</entry></feed>")
    PAGE = lxml.html.fromstring("<html><body><p class='x'>hi</p><a href='/y'>y</a></body></html>")
    assert FEED.xpath("count(//entry)") == 2.0 and PAGE.xpath("//a/@href") == ["/y"]
    assert b"<entry" in lxml.etree.tostring(FEED)

with use("numpy"):
    import numpy as np

    RNG = np.random.default_rng(0)
    MATRIX = np.array([[3.0, 1.0], [1.0, 2.0]])
    SOLUTION = np.linalg.solve(MATRIX, np.array([9.0, 8.0]))
    RECORDS = np.zeros(3, dtype=[("name", "U8"), ("score", "f8")])
    assert np.allclose(SOLUTION, [2.0, 3.0]) and RNG.integers(0, 10, 5).shape == (5,)
    assert float(np.sin(np.linspace(0, np.pi, 5)).max()) == 1.0

with use("pandas"):
    import io

    import pandas as pd

    SALES = pd.DataFrame(
        {"city": ["a", "b", "a"], "amount": [1.0, 2.5, 3.0]},
        index=pd.date_range("2024-01-01", periods=3, tz="UTC"),
    )
    BY_CITY = SALES.groupby("city")["amount"].sum()
    ROUND_TRIP = pd.read_csv(io.StringIO(SALES.to_csv()), index_col=0, parse_dates=True)
    assert BY_CITY["a"] == 4.0 and len(ROUND_TRIP) == 3
    assert SALES.merge(BY_CITY.rename("total"), left_on="city", right_index=True).shape == (3, 3)

with use("sympy"):
    import sympy

    X_SYM, Y_SYM = sympy.symbols("x y")
    SIMPLIFIED = sympy.simplify(sympy.sin(X_SYM) ** 2 + sympy.cos(X_SYM) ** 2)
    ROOTS = sympy.solve(X_SYM**2 - 4, X_SYM)
    INTEGRAL = sympy.integrate(sympy.exp(-X_SYM), (X_SYM, 0, sympy.oo))
    assert SIMPLIFIED == 1 and sorted(ROOTS) == [-2, 2] and INTEGRAL == 1

with use("mpmath"):
    import mpmath

    mpmath.mp.dps = 30
    PI_QUAD = mpmath.quad(mpmath.sin, [0, mpmath.pi])
    assert abs(PI_QUAD - 2) < mpmath.mpf("1e-25")
    mpmath.mp.dps = 15

with use("networkx"):
    import networkx as nx

    ROADS = nx.Graph()
    ROADS.add_weighted_edges_from([("a", "b", 1), ("b", "c", 2), ("a", "c", 5), ("c", "d", 1)])
    TASKS = nx.DiGraph([("fetch", "build"), ("build", "test"), ("fetch", "lint")])
    assert nx.shortest_path(ROADS, "a", "d", weight="weight") == ["a", "b", "c", "d"]
    assert next(iter(nx.topological_sort(TASKS))) == "fetch"
    assert nx.minimum_spanning_tree(ROADS).size(weight="weight") == 4

# ---------------------------------------------------------------------------------- databases

with use("sqlalchemy"):
    import sqlalchemy as sa
    import sqlalchemy.orm as sa_orm

    class Base(sa_orm.DeclarativeBase):
        pass

    class Customer(Base):
        __tablename__ = "customer"
        id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
        name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(50))
        invoices: sa_orm.Mapped[list["Invoice"]] = sa_orm.relationship(back_populates="customer")

    class Invoice(Base):
        __tablename__ = "invoice"
        id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
        total: sa_orm.Mapped[int]
        customer_id: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.ForeignKey("customer.id"))
        customer: sa_orm.Mapped[Customer] = sa_orm.relationship(back_populates="invoices")

    ENGINE = sa.create_engine("sqlite://")
    Base.metadata.create_all(ENGINE)
    with sa_orm.Session(ENGINE) as session:
        session.add(Customer(name="Ada", invoices=[Invoice(total=3), Invoice(total=4)]))
        session.commit()
        TOTAL = session.scalar(
            sa.select(sa.func.sum(Invoice.total)).join(Customer).where(Customer.name == "Ada")
        )
    assert TOTAL == 7

with use("django"):
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="corpus",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection, models
    from django.template import Context, Template

    class Article(models.Model):
        title = models.CharField(max_length=100)
        published = models.DateTimeField(null=True)

        class Meta:
            app_label = "corpus"

        def __str__(self) -> str:
            return self.title

    with connection.schema_editor() as editor:
        editor.create_model(Article)
    Article.objects.create(title="Hello")
    ARTICLE_TEMPLATE = Template("{% for a in articles %}<h1>{{ a|upper }}</h1>{% endfor %}")
    RENDERED = ARTICLE_TEMPLATE.render(Context({"articles": Article.objects.all()}))
    assert RENDERED == "<h1>HELLO</h1>" and Article.objects.filter(title="Hello").count() == 1

# --------------------------------------------------------------------------------- web and http

with use("flask"):
    import flask

    FLASK_APP = flask.Flask("corpus_app")

    @FLASK_APP.route("/hello/<name>")
    def flask_hello(name: str):  # type: ignore[no-untyped-def]
        return flask.jsonify(greeting=f"hello {name}")

    with FLASK_APP.test_client() as client:
        assert client.get("/hello/ada").get_json() == {"greeting": "hello ada"}

with use("fastapi"):
    import fastapi
    import fastapi.testclient
    import pydantic

    API = fastapi.FastAPI()

    class Item(pydantic.BaseModel):
        name: str
        price: float

    @API.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> Item:
        return Item(name=f"item{item_id}{q or ''}", price=1.5)

    @API.post("/items")
    def create_item(item: Item) -> dict:
        return {"created": item.name}

    API_CLIENT = fastapi.testclient.TestClient(API)
    assert API_CLIENT.get("/items/3", params={"q": "x"}).json() == {"name": "item3x", "price": 1.5}
    assert API_CLIENT.post("/items", json={"name": "a", "price": 2}).json() == {"created": "a"}

with use("starlette"):
    import starlette.applications
    import starlette.responses
    import starlette.routing
    import starlette.testclient

    async def homepage(request):  # type: ignore[no-untyped-def]
        return starlette.responses.JSONResponse({"path": request.url.path})

    STARLETTE_APP = starlette.applications.Starlette(
        routes=[starlette.routing.Route("/", homepage)]
    )
    with starlette.testclient.TestClient(STARLETTE_APP) as client:
        assert client.get("/").json() == {"path": "/"}

with use("httpx"):
    import httpx

    def _echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"url": str(request.url)})

    HTTPX_CLIENT = httpx.Client(transport=httpx.MockTransport(_echo), base_url="http://local")
    assert HTTPX_CLIENT.get("/a", params={"b": 1}).json() == {"url": "http://local/a?b=1"}

with use("requests"):
    import requests
    import requests.adapters

    class LocalAdapter(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            response = requests.Response()
            response.status_code = 200
            response._content = b'{"ok": true}'
            response.request = request
            response.url = request.url
            return response

        def close(self) -> None:
            pass

    REQUESTS_SESSION = requests.Session()
    REQUESTS_SESSION.mount("http://local/", LocalAdapter())
    assert REQUESTS_SESSION.get("http://local/x", params={"q": 1}).json() == {"ok": True}

with use("aiohttp"):
    import asyncio

    import aiohttp
    import aiohttp.test_utils
    import aiohttp.web

    async def aiohttp_hello(request):  # type: ignore[no-untyped-def]
        return aiohttp.web.json_response({"name": request.match_info.get("name", "world")})

    AIOHTTP_APP = aiohttp.web.Application()
    AIOHTTP_APP.add_routes([aiohttp.web.get("/", aiohttp_hello)])

    async def _aiohttp_use() -> None:
        response = await aiohttp_hello(aiohttp.test_utils.make_mocked_request("GET", "/"))
        assert response.status == 200
        async with aiohttp.ClientSession():
            pass

    asyncio.run(_aiohttp_use())
    assert len(AIOHTTP_APP.router.routes()) >= 1

with use("discord"):
    import asyncio

    import discord
    from discord.ext import commands

    BOT = commands.Bot(command_prefix="!", intents=discord.Intents.none())

    @BOT.command()
    async def ping(ctx):  # type: ignore[no-untyped-def]
        await ctx.send("pong")

    class Greetings(commands.Cog):
        @commands.command()
        async def hello(self, ctx):  # type: ignore[no-untyped-def]
            await ctx.send("hi")

    asyncio.run(BOT.add_cog(Greetings()))
    EMBED = discord.Embed(title="corpus", colour=discord.Colour.blue())
    assert BOT.get_command("ping") is not None and BOT.get_command("hello") is not None
    assert EMBED.to_dict()["title"] == "corpus"

# ------------------------------------------------------------------------- terminal and text

with use("rich"):
    import io

    import rich.console
    import rich.markdown
    import rich.panel
    import rich.syntax
    import rich.table

    CONSOLE = rich.console.Console(file=io.StringIO(), width=80, force_terminal=True)
    TABLE = rich.table.Table("name", "qty", title="Orders")
    TABLE.add_row("tea", "2")
    CONSOLE.print(TABLE, rich.panel.Panel("[bold]done[/]"), rich.markdown.Markdown("# Title"))
    CONSOLE.print(rich.syntax.Syntax("def f():\n    return 1\n", "python"))
    CONSOLE.log({"a": [1, 2]})
    assert "Orders" in CONSOLE.file.getvalue()

with use("pygments"):
    import pygments
    import pygments.formatters
    import pygments.lexers

    HTML = pygments.highlight(
        "def f(x):\n    return x\n",
        pygments.lexers.PythonLexer(),
        pygments.formatters.HtmlFormatter(),
    )
    ANSI = pygments.highlight(
        "SELECT 1;",
        pygments.lexers.get_lexer_by_name("sql"),
        pygments.formatters.get_formatter_by_name("terminal256"),
    )
    GUESSED = pygments.lexers.guess_lexer_for_filename("x.json", '{"a": 1}')
    assert 'class="k"' in HTML and "\x1b[" in ANSI and GUESSED.name == "JSON"

with use("jinja2"):
    import jinja2

    JINJA = jinja2.Environment(
        loader=jinja2.DictLoader(
            {
                "macros.html": "{% macro item(x) %}<li>{{ x }}</li>{% endmacro %}",
                "page.html": "{% import 'macros.html' as m %}<ul>{% for x in xs %}"
                "{{ m.item(x|shout) }}{% endfor %}</ul>",
            }
        ),
        autoescape=jinja2.select_autoescape(default=True),
    )
    JINJA.filters["shout"] = lambda s: s.upper() + "!"
    PAGE_HTML = JINJA.get_template("page.html").render(xs=["a", "<b>"])
    assert PAGE_HTML == "<ul><li>A!</li><li>&lt;B&gt;!</li></ul>"

with use("click"):
    import click
    import click.testing

    @click.group()
    def cli() -> None:
        pass

    @cli.command()
    @click.option("--count", default=1, type=int)
    @click.argument("name")
    def greet(count: int, name: str) -> None:
        for _ in range(count):
            click.echo(f"hello {name}")

    CLICK_RESULT = click.testing.CliRunner().invoke(cli, ["greet", "--count", "2", "ada"])
    assert CLICK_RESULT.exit_code == 0 and CLICK_RESULT.output == "hello ada\nhello ada\n"

with use("typer"):
    import typer
    import typer.testing

    TYPER_APP = typer.Typer()

    @TYPER_APP.command()
    def add(a: int, b: int = typer.Option(2)) -> None:
        typer.echo(str(a + b))

    @TYPER_APP.command()
    def sub(a: int, b: int) -> None:
        typer.echo(str(a - b))

    TYPER_RESULT = typer.testing.CliRunner().invoke(TYPER_APP, ["add", "3", "--b", "4"])
    assert TYPER_RESULT.exit_code == 0 and TYPER_RESULT.output.strip() == "7"

with use("textual"):
    import asyncio

    import textual.app
    import textual.widgets

    class CounterApp(textual.app.App):
        BINDINGS = [("i", "increment", "Increment")]

        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def compose(self):  # type: ignore[no-untyped-def]
            yield textual.widgets.Header()
            yield textual.widgets.Label("0", id="count")
            yield textual.widgets.Footer()

        def action_increment(self) -> None:
            self.count += 1
            self.query_one("#count", textual.widgets.Label).update(str(self.count))

    async def _drive_textual() -> int:
        app = CounterApp()
        async with app.run_test() as pilot:
            await pilot.press("i", "i")
        return app.count

    assert asyncio.run(_drive_textual()) == 2

# ------------------------------------------------------------------------------- interactive

with use("jupyter_client"):
    import jupyter_client
    import jupyter_client.session

    JUPYTER_SESSION = jupyter_client.session.Session(key=b"corpus", username="corpus")
    _msg = JUPYTER_SESSION.msg("execute_request", content={"code": "1 + 1", "silent": False})
    _wire = JUPYTER_SESSION.serialize(_msg)
    _idents, _frames = JUPYTER_SESSION.feed_identities(_wire)
    ROUND_MSG = JUPYTER_SESSION.deserialize(_frames)
    assert ROUND_MSG["content"]["code"] == "1 + 1"
    CONNECTION_FILE, _ = jupyter_client.write_connection_file(
        os.path.join(SCRATCH, "kernel-corpus.json"), ip="127.0.0.1"
    )

with use("IPython"):
    from IPython.core.interactiveshell import InteractiveShell

    SHELL = InteractiveShell.instance()
    SHELL.run_line_magic("load_ext", "autoreload")
    SHELL.run_line_magic("autoreload", "2")
    SHELL.run_cell("def shell_side(x):\n    return x + 1\nanswer2 = shell_side(1)")
    SHELL.run_cell("import json\nanswer3 = json.dumps([answer2])")
    assert SHELL.user_ns["answer3"] == "[2]"

with use("ipykernel"):
    import ipykernel.inprocess.manager
    from IPython.core.interactiveshell import InteractiveShell

    # The in-process kernel makes its own shell: a singleton, so let go of the one above.
    InteractiveShell.clear_instance()

    KERNEL_MANAGER = ipykernel.inprocess.manager.InProcessKernelManager()
    KERNEL_MANAGER.start_kernel()
    KERNEL_CLIENT = KERNEL_MANAGER.client()
    KERNEL_CLIENT.start_channels()
    KERNEL_CLIENT.execute("def kernel_side(x):\n    return x * 2\nanswer = kernel_side(21)")
    assert KERNEL_MANAGER.kernel.shell.user_ns["answer"] == 42

# Anything above may have swapped the standard streams (the in-process kernel does).
sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
