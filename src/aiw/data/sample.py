"""The insurer's sample data: customers, policies, claims, payments and policy documents.

:func:`generate` writes six tables into the workspace's DuckDB warehouse and copies the policy
documents into ``Workspace.documents_dir``. Everything is vectorised with numpy from one
``np.random.default_rng(seed)``: the same seed and end date give byte-identical tables.

How the claims are made, so that later capabilities have something real to find:

* **Volume.** Claims are spread over three years ending at ``end_date`` by a multinomial draw
  over (day, line of business) cells whose weight has weekly seasonality (fewer on weekends),
  yearly seasonality per claim type (water and storm damage in winter, travel in summer) and an
  upward trend of 15% over the three years.
* **Anomalies.** 5 to 9 cells get an injected spike (4-8x the expected count, e.g. a storm's
  home claims) or a drop (5-20% of it); ``sample_anomalies`` holds the expected and injected
  counts. Claims of an anomaly cell are reported the same day and reports due on a drop day
  arrive a day late, so the anomalies show by incident date and by reporting date alike.
* **Reporting.** A claim exists once it is reported (the same day for 42%, else a long-tailed
  delay). An incident whose report would fall after ``end_date`` is not known yet (incurred but
  not reported): such a claim takes an earlier incident day of its line on which its delay fits,
  so the table keeps exactly ``rows`` claims, the reporting-date series stays smooth to its last
  day and the incident-date series thins over its last week, as a real claims table does.
* **Fraud.** ``is_fraud`` (about 4.5%) is drawn from a logistic model over the amount (relative
  to its claim type and to the policy's coverage limit), days to report, prior claims, channel,
  the policy's age at the incident and the line of business. ``customers.gender`` shifts the
  product mix a little but never enters the label directly. ``status`` and the notes are
  *consequences* of the label (fraud is denied more often): never use them as features.
* **Notes.** See :mod:`aiw.data._notes`.

Tables are built into ``_aiw_stage_*`` tables, one transaction each, then swapped in together in
one transaction: a failure part-way leaves the previous tables as they were.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiw.data._notes import CHANNELS, CLAIM_STATUSES, compose_notes
from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import duckdb

    from aiw.tour import TourContext
    from aiw.workspace import Workspace

__all__ = [
    "CLAIM_TYPES",
    "INTERNAL_DOCUMENTS",
    "LINES_OF_BUSINESS",
    "MAX_ROWS",
    "MIN_ROWS",
    "TABLES",
    "ProgressCallback",
    "SampleDocument",
    "SampleSummary",
    "generate",
    "sample_documents",
    "tour_step",
]

MIN_ROWS = 100
MAX_ROWS = 50_000_000
LINES_OF_BUSINESS = ("auto", "home", "health", "travel", "life")
REGIONS = ("north", "south", "east", "west", "central")
SEGMENTS = ("retail", "sme", "corporate")
POLICY_STATUSES = ("active", "lapsed", "cancelled")
PAYMENT_METHODS = ("bank_transfer", "cheque", "card", "repairer_direct")
INTERNAL_DOCUMENTS = frozenset(
    {"general-fraud-policy", "general-underwriting-guidelines", "general-claims-handling-standards"}
)
"""Documents tagged ``internal`` (``access: internal`` in their front matter; the rest are ``public``)."""

ProgressCallback = Callable[[str, int, int], None]
"""``progress(step_name, done, total)``: ``done`` of ``total`` units of ``step_name`` are done."""

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (
        ("customer_id", "BIGINT"),
        ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"),
        ("email", "VARCHAR"),
        ("phone", "VARCHAR"),
        ("birth_date", "DATE"),
        ("gender", "VARCHAR"),
        ("region", "VARCHAR"),
        ("segment", "VARCHAR"),
        ("signup_date", "DATE"),
        ("credit_score", "INTEGER"),
        ("updated_at", "TIMESTAMP"),
    ),
    "policies": (
        ("policy_id", "BIGINT"),
        ("customer_id", "BIGINT"),
        ("line_of_business", "VARCHAR"),
        ("product", "VARCHAR"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("annual_premium", "DOUBLE"),
        ("deductible", "DOUBLE"),
        ("coverage_limit", "DOUBLE"),
        ("status", "VARCHAR"),
        ("updated_at", "TIMESTAMP"),
    ),
    "claims": (
        ("claim_id", "BIGINT"),
        ("policy_id", "BIGINT"),
        ("customer_id", "BIGINT"),
        ("line_of_business", "VARCHAR"),
        ("claim_type", "VARCHAR"),
        ("region", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("incident_date", "DATE"),
        ("reported_at", "TIMESTAMP"),
        ("amount", "DOUBLE"),
        ("status", "VARCHAR"),
        ("days_to_report", "INTEGER"),
        ("prior_claims", "INTEGER"),
        ("adjuster_notes", "VARCHAR"),
        ("is_fraud", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ),
    "payments": (
        ("payment_id", "BIGINT"),
        ("claim_id", "BIGINT"),
        ("paid_at", "TIMESTAMP"),
        ("amount", "DOUBLE"),
        ("method", "VARCHAR"),
    ),
    "documents": (
        ("doc_id", "VARCHAR"),
        ("title", "VARCHAR"),
        ("line_of_business", "VARCHAR"),
        ("doc_type", "VARCHAR"),
        ("path", "VARCHAR"),
        ("content", "VARCHAR"),
        ("content_hash", "VARCHAR"),
        ("access_tags", "VARCHAR"),
        ("updated_at", "TIMESTAMP"),
    ),
    "sample_anomalies": (
        ("day", "DATE"),
        ("line_of_business", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("expected_claims", "DOUBLE"),
        ("injected_claims", "INTEGER"),
    ),
}
"""Every table :func:`generate` writes: name -> ((column, DuckDB type), ...)."""

_STAGE = "_aiw_stage_"
_CHUNK = 250_000  # claims per notes/insert batch: bounds memory at tens of millions of rows

# Claim types: (name, line index, share within the line, median amount, lognormal sigma,
# yearly seasonal amplitude, peak day of year).
CLAIM_TYPES: tuple[tuple[str, int, float, float, float, float, int], ...] = (
    ("collision", 0, 0.42, 3200, 0.8, 0.15, 15),
    ("vehicle_theft", 0, 0.10, 11000, 0.6, 0.10, 300),
    ("windscreen", 0, 0.22, 450, 0.35, 0.30, 30),
    ("vandalism", 0, 0.10, 1100, 0.6, 0.15, 200),
    ("third_party_liability", 0, 0.16, 6500, 1.0, 0.10, 15),
    ("water_damage", 1, 0.32, 4200, 0.9, 0.45, 20),
    ("storm", 1, 0.14, 5200, 0.9, 0.80, 350),
    ("fire", 1, 0.08, 22000, 1.1, 0.25, 10),
    ("burglary", 1, 0.26, 3800, 0.8, 0.25, 320),
    ("home_liability", 1, 0.20, 3000, 1.0, 0.0, 0),
    ("outpatient", 2, 0.38, 350, 0.6, 0.25, 30),
    ("hospitalisation", 2, 0.17, 9000, 0.8, 0.15, 30),
    ("dental", 2, 0.20, 420, 0.5, 0.05, 100),
    ("prescription", 2, 0.20, 120, 0.7, 0.20, 30),
    ("maternity", 2, 0.05, 6500, 0.5, 0.0, 0),
    ("trip_cancellation", 3, 0.30, 1400, 0.7, 0.35, 190),
    ("lost_baggage", 3, 0.22, 900, 0.6, 0.60, 205),
    ("medical_abroad", 3, 0.22, 3200, 1.1, 0.55, 210),
    ("flight_delay", 3, 0.26, 250, 0.4, 0.60, 200),
    ("death_benefit", 4, 0.35, 150000, 0.5, 0.10, 20),
    ("critical_illness", 4, 0.35, 60000, 0.6, 0.0, 0),
    ("disability", 4, 0.30, 25000, 0.7, 0.0, 0),
)
"""(name, line index, share, median amount, sigma, yearly amplitude, peak day of year)."""

_LOB_SHARE = np.array([0.34, 0.26, 0.22, 0.12, 0.06])
_WEEKLY = np.array([1.15, 1.10, 1.05, 1.05, 1.00, 0.62, 0.50])  # Monday .. Sunday

# Products: (name, line index, weight in line, deductibles, coverage limits, base premium).
# The numbers match the policy documents in aiw/data/documents.
_PRODUCTS: tuple[tuple[str, int, float, tuple[float, ...], tuple[float, ...], float], ...] = (
    ("Auto Essential", 0, 0.45, (500, 1000), (25_000, 50_000), 520),
    ("Auto Comprehensive", 0, 0.45, (250, 500, 1000), (50_000, 100_000), 860),
    ("Auto Fleet", 0, 0.10, (1000, 2500), (250_000,), 2400),
    ("Home Standard", 1, 0.50, (250, 500), (150_000, 300_000), 380),
    ("Home Plus", 1, 0.35, (250, 500, 1000), (300_000, 600_000), 690),
    ("Landlord Cover", 1, 0.15, (500, 1000), (250_000, 500_000), 560),
    ("Health Basic", 2, 0.6, (0, 250, 500), (50_000, 100_000), 1450),
    ("Health Premium", 2, 0.4, (0, 250), (250_000, 1_000_000), 3200),
    ("Travel Single Trip", 3, 0.45, (75, 150), (10_000, 25_000), 65),
    ("Travel Annual Multi-Trip", 3, 0.55, (75, 150), (25_000, 50_000), 210),
    ("Term Life 20", 4, 0.65, (0,), (100_000, 250_000, 500_000), 420),
    ("Whole Life", 4, 0.35, (0,), (50_000, 150_000, 300_000), 1100),
)

# Spike causes: (line, claim type the extra claims mostly are, season).
_SPIKES = (
    ("home", "storm", "winter"),
    ("auto", "collision", "winter"),
    ("travel", "flight_delay", "summer"),
    ("health", "outpatient", "winter"),
    ("home", "water_damage", "winter"),
    ("auto", "windscreen", "summer"),
)

_FEMALE = (
    "Emma",
    "Olivia",
    "Sophie",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Grace",
    "Lily",
    "Chloe",
    "Ella",
    "Hannah",
    "Lucy",
    "Anna",
    "Sarah",
    "Laura",
    "Julia",
    "Maria",
    "Elena",
    "Clara",
    "Nora",
    "Alice",
    "Ruth",
    "Helen",
    "Karen",
    "Susan",
    "Linda",
    "Fatima",
    "Aisha",
    "Priya",
    "Mei",
    "Yuki",
    "Ines",
    "Lea",
    "Zoe",
    "Eva",
    "Freya",
    "Jessica",
    "Rachel",
    "Megan",
    "Charlotte",
    "Emily",
    "Victoria",
    "Rebecca",
    "Natalie",
    "Paula",
    "Sofia",
    "Irene",
)
_MALE = (
    "James",
    "Oliver",
    "Harry",
    "Jack",
    "George",
    "Noah",
    "Leo",
    "Arthur",
    "Oscar",
    "Thomas",
    "William",
    "Henry",
    "Daniel",
    "David",
    "Michael",
    "Peter",
    "John",
    "Paul",
    "Mark",
    "Luke",
    "Samuel",
    "Adam",
    "Ben",
    "Tom",
    "Omar",
    "Ahmed",
    "Raj",
    "Wei",
    "Kenji",
    "Lucas",
    "Mateo",
    "Felix",
    "Max",
    "Jonas",
    "Eric",
    "Robert",
    "Richard",
    "Simon",
    "Andrew",
    "Stephen",
    "Matthew",
    "Christopher",
    "Anthony",
    "Patrick",
    "Sean",
    "Marco",
    "Pablo",
    "Ivan",
)
_LAST = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Morgan",
    "Moore",
    "Martin",
    "Price",
    "Bell",
    "Cooper",
    "Ward",
    "Turner",
    "Hill",
    "Parker",
    "Collins",
    "Edwards",
    "Stewart",
    "Morris",
    "Murphy",
    "Cook",
    "Rogers",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Bennett",
    "Gray",
    "Hughes",
    "Fisher",
    "Russell",
    "Griffiths",
    "Lloyd",
    "Harrison",
    "Kennedy",
    "Novak",
    "Müller",
    "Schmidt",
    "Fischer",
    "Weber",
    "Rossi",
    "Russo",
    "Bianchi",
    "Garcia",
    "Fernandez",
    "Lopez",
    "Martinez",
    "Dubois",
    "Laurent",
    "Moreau",
    "Nowak",
    "Kowalski",
    "Jensen",
    "Hansen",
    "Nielsen",
    "Larsen",
    "Andersen",
    "Berg",
    "Lindqvist",
    "Virtanen",
    "O'Brien",
    "Byrne",
    "Ryan",
    "Walsh",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Tanaka",
    "Sato",
    "Kim",
    "Park",
    "Nguyen",
    "Singh",
    "Shah",
    "Ali",
    "Hussain",
    "Ahmed",
    "Okafor",
    "Mensah",
)
_ASCII = str.maketrans({"ü": "ue", "'": ""})
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


# -- public results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleDocument:
    """One packaged policy document."""

    doc_id: str
    title: str
    line_of_business: str
    doc_type: str
    filename: str
    content: str
    access_tags: str

    @property
    def content_hash(self) -> str:
        """SHA-256 of the file's bytes."""
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate` wrote.

    Attributes:
        rows: Rows per table.
        seconds: Seconds per table (building and loading; ``claims`` includes drawing the
            numbers every table shares), plus ``publish`` for the swap.
        total_seconds: Wall time of the whole generation.
        seed: The seed used.
        start_date: The first day of the claims window.
        end_date: The last day of the claims window.
        fraud_rate: Share of claims labelled fraud.
        anomalies: Number of injected claim-volume anomalies.
        documents_dir: Where the Markdown documents were written.
    """

    rows: dict[str, int]
    seconds: dict[str, float]
    total_seconds: float
    seed: int
    start_date: date
    end_date: date
    fraud_rate: float
    anomalies: int
    documents_dir: Path


# -- validation ----------------------------------------------------------------------------------
def _check_rows(rows: object) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or not MIN_ROWS <= rows <= MAX_ROWS:
        raise InvalidInputError(
            f"The 'rows' parameter of generate must be an integer in "
            f"[{MIN_ROWS:,}, {MAX_ROWS:,}]. Got {rows!r} instead."
        )
    return int(rows)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise InvalidInputError(
            f"The 'seed' parameter of generate must be a non-negative integer. Got {seed!r} instead."
        )
    return int(seed)


def _check_end_date(end_date: object) -> date:
    if end_date is None:
        return datetime.now(UTC).date()
    if isinstance(end_date, datetime):
        end_date = end_date.date()
    if isinstance(end_date, str):
        try:
            end_date = date.fromisoformat(end_date.strip())
        except ValueError:
            raise InvalidInputError(
                f"The 'end_date' parameter of generate must be a date in the form YYYY-MM-DD. Got {end_date!r} instead."
            ) from None
    if not isinstance(end_date, date):
        raise InvalidInputError(
            f"The 'end_date' parameter of generate must be a date, a YYYY-MM-DD "
            f"string or None. Got {end_date!r} instead."
        )
    if not 1950 <= end_date.year <= 2200:
        raise InvalidInputError(
            f"The 'end_date' parameter of generate must lie between 1950 and 2200. Got {end_date.isoformat()} instead."
        )
    return end_date


def _three_years_before(end: date) -> date:
    """The first day of a three-year window ending on ``end``."""
    try:
        back = end.replace(year=end.year - 3)
    except ValueError:  # 29 February
        back = end.replace(year=end.year - 3, day=28)
    return back + timedelta(days=1)


# -- documents -----------------------------------------------------------------------------------
def sample_documents() -> list[SampleDocument]:
    """The packaged policy documents, sorted by id.

    File names follow ``<line>-<doc type>.md`` where the line is one of
    :data:`LINES_OF_BUSINESS` or ``general``; the first line of each file is ``# Title``.
    """
    from aiw.rag.loaders import parse_front_matter  # the one front-matter reader; the RAG loader's

    folder = resources.files("aiw.data") / "documents"
    docs = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        content = entry.read_bytes().decode("utf-8")
        stem = entry.name[:-3]
        line, _, kind = stem.partition("-")
        try:
            front, body = parse_front_matter(content)
        except InvalidInputError as exc:
            raise InvalidInputError(f"The packaged document {entry.name}: {exc}") from exc
        first = body.split("\n", 1)[0]
        if line not in (*LINES_OF_BUSINESS, "general") or not kind or not first.startswith("# "):
            raise InvalidInputError(
                f"The packaged document {entry.name} breaks the naming rules "
                f"('<line>-<type>.md' starting with '# Title' after any front matter)."
            )
        access = front.get("access") or "public"
        docs.append(
            SampleDocument(
                stem,
                first[2:].strip(),
                line,
                kind.replace("-", "_"),
                entry.name,
                content,
                access,
            )
        )
    return docs


def _write_documents(target: Path, docs: list[SampleDocument]) -> None:
    """Write each document atomically (temp file + rename); identical files are left untouched."""
    target.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        path = target / doc.filename
        data = doc.content.encode("utf-8")
        if path.exists() and path.read_bytes() == data:
            continue  # keep the mtime, so incremental ingestion sees nothing changed
        tmp = path.with_name(f".{doc.filename}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _build_documents(docs: list[SampleDocument], end: date) -> pa.Table:
    stamp = datetime.combine(end, datetime.min.time())
    return pa.table(
        {
            "doc_id": [d.doc_id for d in docs],
            "title": [d.title for d in docs],
            "line_of_business": [d.line_of_business for d in docs],
            "doc_type": [d.doc_type for d in docs],
            "path": [d.filename for d in docs],
            "content": [d.content for d in docs],
            "content_hash": [d.content_hash for d in docs],
            "access_tags": [d.access_tags for d in docs],
            "updated_at": pa.array([stamp] * len(docs), pa.timestamp("us")),
        }
    )


# -- helpers -------------------------------------------------------------------------------------
def _categorical(
    rng: np.random.Generator, probs: np.ndarray, group: np.ndarray | None = None, size: int | None = None
) -> np.ndarray:
    """Draw category indices from ``probs`` (one row per group when ``group`` is given)."""
    cum = np.cumsum(probs, axis=-1)
    if group is None:
        assert size is not None
        return np.searchsorted(cum / cum[-1], rng.random(size), side="right").astype(np.int8)
    cum = cum / cum[:, -1:]
    u = rng.random(len(group))
    return (u[:, None] >= cum[group][:, :-1]).sum(axis=1).astype(np.int8)


def _labels(names: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    """Category indices as an Arrow string array."""
    return pc.take(pa.array(names, pa.string()), pa.array(idx.astype(np.int64)))


def _days(base: np.datetime64, offset: np.ndarray) -> pa.Array:
    return pa.array(base + offset.astype("timedelta64[D]"))


# -- customers -----------------------------------------------------------------------------------
@dataclass
class _Customers:
    n: int
    gender_f: np.ndarray
    age: np.ndarray
    region: np.ndarray
    segment: np.ndarray
    email: pa.Array | None = None
    phone: pa.Array | None = None


def _draw_customers(rng: np.random.Generator, n: int) -> _Customers:
    return _Customers(
        n=n,
        gender_f=rng.random(n) < 0.51,
        age=rng.triangular(19, 42, 90, n),  # at the window's end
        region=_categorical(rng, np.array([0.22, 0.20, 0.18, 0.18, 0.22]), size=n),
        segment=_categorical(rng, np.array([0.82, 0.13, 0.05]), size=n),
    )


def _build_customers(
    rng: np.random.Generator, cust: _Customers, first_start: np.ndarray, start64: np.datetime64, n_days: int
) -> pa.Table:
    """The customers table; ``first_start`` is each customer's first policy start (day offset)."""
    n = cust.n
    female = pa.array(_FEMALE)
    male = pa.array(_MALE)
    first = pc.if_else(
        pa.array(cust.gender_f),
        pc.take(female, pa.array(rng.integers(0, len(_FEMALE), n))),
        pc.take(male, pa.array(rng.integers(0, len(_MALE), n))),
    )
    last = pc.take(pa.array(_LAST), pa.array(rng.integers(0, len(_LAST), n)))
    ids = np.arange(1, n + 1, dtype=np.int64)
    ascii_last = pa.array([s.translate(_ASCII) for s in _LAST])
    sep = pc.take(pa.array([".", "_", ""]), pa.array(rng.integers(0, 3, n)))
    suffix = pc.if_else(
        pa.array(rng.random(n) < 0.6), pc.cast(pa.array(ids % 1000), pa.string()), pa.scalar("", pa.string())
    )
    domain = pc.take(pa.array(_DOMAINS), pa.array(rng.integers(0, len(_DOMAINS), n)))
    email = pc.binary_join_element_wise(
        pc.utf8_lower(first),
        sep,
        pc.utf8_lower(pc.take(ascii_last, pc.index_in(last, pa.array(_LAST)))),
        suffix,
        "@",
        domain,
        "",
    )
    digits = rng.integers(0, 10**9, n)
    uk = pc.binary_join_element_wise(
        "+44 7700 9", pc.utf8_lpad(pc.cast(pa.array(digits % 100_000), pa.string()), width=5, padding="0"), ""
    )
    us = pc.binary_join_element_wise(
        "+1-",
        pc.cast(pa.array(200 + digits % 800), pa.string()),
        "-555-",
        pc.utf8_lpad(pc.cast(pa.array((digits // 1000) % 10_000), pa.string()), width=4, padding="0"),
        "",
    )
    phone = pc.if_else(pa.array(rng.random(n) < 0.5), uk, us)
    birth = -np.round(cust.age * 365.25).astype(np.int64) + (n_days - 1)
    signup = np.minimum(np.maximum(first_start - rng.integers(0, 90, n), _adult_day(cust, n_days)), first_start)
    updated = signup * 86400 + (rng.random(n) * ((n_days - signup) * 86400 - 1)).astype(np.int64)
    credit = np.clip(np.round(rng.normal(690, 75, n)), 300, 850).astype(np.int32)
    cust.email, cust.phone = email, phone
    base_s = start64.astype("datetime64[s]")
    return pa.table(
        {
            "customer_id": ids,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "birth_date": _days(start64, birth),
            "gender": pc.if_else(pa.array(cust.gender_f), "F", "M"),
            "region": _labels(REGIONS, cust.region),
            "segment": _labels(SEGMENTS, cust.segment),
            "signup_date": _days(start64, signup),
            "credit_score": credit,
            "updated_at": pa.array(base_s + updated.astype("timedelta64[s]")),
        }
    )


# -- policies ------------------------------------------------------------------------------------
@dataclass
class _Policies:
    n: int
    customer: np.ndarray  # customer index (0-based)
    lob: np.ndarray
    start: np.ndarray  # day offsets from the window start (negative: before it)
    end: np.ndarray
    deductible: np.ndarray
    limit: np.ndarray
    propensity: np.ndarray
    long_standing: np.ndarray
    cancelled: np.ndarray
    product: np.ndarray
    premium: np.ndarray  # before noise


def _adult_day(cust: _Customers, n_days: int) -> np.ndarray:
    """Each customer's 18th birthday as a day offset from the window start."""
    return (n_days - 1) - np.round((cust.age - 18) * 365.25).astype(np.int64)


def _draw_policies(rng: np.random.Generator, n: int, cust: _Customers, n_days: int) -> _Policies:
    # every customer holds at least one policy; the rest go to random customers
    customer = np.concatenate([rng.permutation(cust.n), rng.integers(0, cust.n, n - cust.n)])
    # The last 15 are long-standing (three per line) and cover the whole window, so every claim
    # finds a policy in force; they belong to customers of 35 or more.
    anchors = np.arange(n - 15, n)
    seniors = np.flatnonzero(cust.age >= 35)
    seniors = seniors if seniors.size else np.array([int(np.argmax(cust.age))])
    customer[anchors] = seniors[rng.integers(0, seniors.size, 15)]
    # The product mix differs a little by gender (and so does the fraud base rate of each
    # line): fairness metrics have a gap to find although the label never reads gender.
    mix_m = np.array([0.38, 0.27, 0.17, 0.11, 0.07])
    mix_f = np.array([0.27, 0.29, 0.23, 0.13, 0.08])
    lob = _categorical(rng, np.stack([mix_m, mix_f]), cust.gender_f[customer].astype(np.int64))
    long_standing = np.zeros(n, bool)
    long_standing[anchors] = True
    lob[anchors] = np.arange(15) % 5
    life = lob == 4
    start = np.where(life, rng.integers(-15 * 365, n_days - 20, n), rng.integers(-4 * 365, n_days - 20, n))
    years = np.where(life, rng.integers(10, 26, n), rng.integers(1, 6, n))
    start[anchors] = -rng.integers(5 * 365, 8 * 365, 15)
    years[anchors] = 14
    start = np.maximum(start, _adult_day(cust, n_days)[customer])  # nobody insures a child
    end = start + years * 365 - 1
    # cancellations end a policy early, in the past
    hi = np.minimum(end, n_days - 2)
    can_cancel = (rng.random(n) < 0.07) & ~long_standing & (hi - start > 31)
    cancel_end = start + 30 + (rng.random(n) * np.maximum(hi - start - 30, 1)).astype(np.int64)
    end = np.where(can_cancel, cancel_end, end)
    product = np.zeros(n, np.int64)
    for line in range(5):
        rows = np.flatnonzero(lob == line)
        ids = [i for i, p in enumerate(_PRODUCTS) if p[1] == line]
        weights = np.array([_PRODUCTS[i][2] for i in ids])
        product[rows] = np.array(ids)[_categorical(rng, weights, size=len(rows))]
    deductible, limit, premium = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, (_, _, _, deductibles, limits, base) in enumerate(_PRODUCTS):
        rows = np.flatnonzero(product == i)
        d = rng.integers(0, len(deductibles), len(rows))
        deductible[rows] = np.array(deductibles, float)[d]
        limit[rows] = np.array(limits, float)[rng.integers(0, len(limits), len(rows))]
        premium[rows] = base * (limit[rows] / limits[0]) ** 0.5 * (1 - 0.07 * d)
    # claim propensity: heavy-tailed, so some customers pile up prior claims
    return _Policies(
        n,
        customer,
        lob,
        start,
        end,
        deductible,
        limit,
        rng.gamma(0.8, 1.25, n),
        long_standing,
        can_cancel,
        product,
        premium,
    )


def _build_policies(rng: np.random.Generator, pol: _Policies, start64: np.datetime64, n_days: int) -> pa.Table:
    n = pol.n
    premium = np.round(pol.premium * rng.lognormal(0, 0.15, n), 2)
    status = np.where(pol.end >= n_days - 1, 0, np.where(pol.cancelled, 2, 1))
    # the last change: the cancellation or lapse, else the latest renewal before the window end
    renewal = pol.start + ((n_days - 1 - pol.start) // 365) * 365
    changed = np.where(status == 0, renewal, pol.end)
    updated = np.minimum(changed, n_days - 1) * 86400 + rng.integers(8 * 3600, 18 * 3600, n)
    names = tuple(p[0] for p in _PRODUCTS)
    return pa.table(
        {
            "policy_id": np.arange(1, n + 1, dtype=np.int64),
            "customer_id": pol.customer.astype(np.int64) + 1,
            "line_of_business": _labels(LINES_OF_BUSINESS, pol.lob),
            "product": _labels(names, pol.product),
            "start_date": _days(start64, pol.start),
            "end_date": _days(start64, pol.end),
            "annual_premium": premium,
            "deductible": pol.deductible,
            "coverage_limit": pol.limit,
            "status": _labels(POLICY_STATUSES, status),
            "updated_at": pa.array(start64.astype("datetime64[s]") + updated.astype("timedelta64[s]")),
        }
    )


# -- claims --------------------------------------------------------------------------------------
@dataclass
class _Claims:
    """Claim columns as numpy arrays, sorted by reporting time (claim_id = position + 1)."""

    policy: np.ndarray
    customer: np.ndarray
    lob: np.ndarray
    ctype: np.ndarray
    region: np.ndarray
    channel: np.ndarray
    day: np.ndarray  # incident day offset
    reported_s: np.ndarray  # reporting time, seconds from the window start
    amount: np.ndarray
    status: np.ndarray
    dtr: np.ndarray
    prior: np.ndarray
    fraud: np.ndarray
    updated_s: np.ndarray
    pay_count: np.ndarray  # payment rows per claim
    pay_plan: np.ndarray  # instalments planned (>= pay_count)
    pay_first: np.ndarray  # seconds from reporting to the first payment
    pay_gap: np.ndarray  # seconds between instalments
    payout: np.ndarray
    anomalies: pa.Table


def _daily_weights(start64: np.datetime64, n_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell weights days x lines, claim-type weights days x types, day-of-week per day)."""
    dates = start64 + np.arange(n_days).astype("timedelta64[D]")
    dow = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    share = np.array([t[2] for t in CLAIM_TYPES])
    amp = np.array([t[5] for t in CLAIM_TYPES])
    peak = np.array([t[6] for t in CLAIM_TYPES])
    type_w = share * (1 + amp * np.cos(2 * np.pi * (doy[:, None] - peak) / 365.25))
    lines = np.array([t[1] for t in CLAIM_TYPES])
    seasonal = np.stack([type_w[:, lines == k].sum(axis=1) for k in range(5)], axis=1)
    seasonal /= seasonal.mean(axis=0)
    trend = 1 + 0.15 * np.arange(n_days) / n_days
    cells = _LOB_SHARE * seasonal * (_WEEKLY[dow] * trend)[:, None]
    return cells / cells.sum(), type_w, dow


def _pick_anomalies(
    rng: np.random.Generator, start64: np.datetime64, n_days: int, dow: np.ndarray
) -> list[tuple[int, int, str, float, int]]:
    """(day, line, kind, factor, claim type or -1) for each injected anomaly."""
    months = (start64 + np.arange(n_days).astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64) % 12 + 1
    seasons = {"winter": np.isin(months, (12, 1, 2)), "summer": np.isin(months, (6, 7, 8))}
    free = (np.arange(n_days) >= 60) & (np.arange(n_days) <= n_days - 10) & (dow < 5)
    n_spikes, n_drops = int(rng.integers(4, 8)), int(rng.integers(1, 3))
    order = [0, *(1 + rng.permutation(len(_SPIKES) - 1))]  # always a storm
    type_index = {t[0]: i for i, t in enumerate(CLAIM_TYPES)}
    picks: list[tuple[int, int, str, float, int]] = []
    plan = [(_SPIKES[i][0], _SPIKES[i][1], _SPIKES[i][2], "spike") for i in order[:n_spikes]]
    plan += [(LINES_OF_BUSINESS[int(rng.integers(0, 3))], "", "any", "drop") for _ in range(n_drops)]
    for line, ctype, season, kind in plan:
        allowed = free & seasons[season] if season in seasons else free
        candidates = np.flatnonzero(allowed)
        day = int(candidates[rng.integers(0, len(candidates))])
        free[max(0, day - 10) : day + 11] = False  # keep anomalies apart
        factor = float(rng.uniform(4, 8)) if kind == "spike" else float(rng.uniform(0.05, 0.2))
        picks.append((day, LINES_OF_BUSINESS.index(line), kind, factor, type_index.get(ctype, -1)))
    return picks


def _draw_claims(
    rng: np.random.Generator, n: int, cust: _Customers, pol: _Policies, start64: np.datetime64, n_days: int
) -> _Claims:
    p, type_w, dow = _daily_weights(start64, n_days)
    picks = _pick_anomalies(rng, start64, n_days, dow)
    flat = p.ravel().copy()
    cells = np.array([d * 5 + k for d, k, *_ in picks])
    factors = np.array([f for *_, f, _ in picks])
    # Scale so that expected counts stay comparable after the injected ones are taken out.
    scale = n / (1 - flat[cells].sum() + (flat[cells] * factors).sum())
    expected = flat[cells] * scale
    floor = max(2, min(8, n // 200))
    injected = np.where(
        factors > 1, np.maximum(np.round(expected * factors), np.ceil(expected) + floor), np.floor(expected * factors)
    ).astype(np.int64)
    flat[cells] = 0
    counts = rng.multinomial(max(n - int(injected.sum()), 0), flat / flat.sum())
    counts[cells] = injected
    cell = np.repeat(np.arange(flat.size), counts)[:n]
    if cell.size < n:  # only when the floors ate the whole budget at tiny sizes
        cell = np.concatenate([cell, rng.choice(flat.size, n - cell.size, p=flat / flat.sum())])
        cell.sort()
    day, lob = cell // 5, (cell % 5).astype(np.int8)
    anomaly_of_cell = np.full(flat.size, -1)
    anomaly_of_cell[cells] = np.arange(len(picks))
    anomaly = anomaly_of_cell[cell]

    # Reporting delay (see the module's docstring). Claims of an anomaly cell are reported the
    # same day (a storm's claims come in at once). A claim whose report would fall after the
    # window is incurred but not reported: it takes an earlier day of its line, drawn with the
    # line's day weights (anomaly cells excluded) among the days on which its delay fits.
    dtr = np.minimum(_draw_delays(rng, n), n_days - 1)
    dtr[anomaly >= 0] = 0
    spill = np.flatnonzero(day + dtr > n_days - 1)
    weights = flat.reshape(n_days, 5)  # anomaly cells are zero here
    for k in range(5):
        moved = spill[lob[spill] == k]
        if moved.size:
            cum = np.cumsum(weights[:, k])
            day[moved] = np.searchsorted(cum, rng.random(moved.size) * cum[n_days - 1 - dtr[moved]], side="right")
    day = np.minimum(day, n_days - 1 - dtr)  # float round-off at a boundary only

    # claim type from the day's seasonal mix of the line; spikes are mostly their cause
    lines = np.array([t[1] for t in CLAIM_TYPES])
    ctype = np.zeros(n, np.int64)
    for k in range(5):
        rows = np.flatnonzero(lob == k)
        ids = np.flatnonzero(lines == k)
        cum = np.cumsum(type_w[:, ids], axis=1)
        cum /= cum[:, -1:]
        ctype[rows] = ids[(rng.random(len(rows))[:, None] >= cum[day[rows]][:, :-1]).sum(axis=1)]
    for a, (_, _, kind, _, cause) in enumerate(picks):
        if kind == "spike":
            rows = np.flatnonzero((anomaly == a) & (rng.random(n) < 0.85))
            ctype[rows] = cause

    policy = _assign_policies(rng, day, lob, pol)
    customer = pol.customer[policy]
    age = cust.age[customer]
    group = np.where(cust.segment[customer] == 2, 0, np.where(age < 35, 1, np.where(age > 60, 2, 3)))
    channel = _categorical(
        rng,
        np.array(
            [[0.15, 0.20, 0.55, 0.10], [0.30, 0.12, 0.08, 0.50], [0.20, 0.50, 0.25, 0.05], [0.35, 0.25, 0.15, 0.25]]
        ),
        group,
    )

    reported_day = day + dtr
    for d, k, kind, _, _ in picks:
        if kind == "drop":  # an outage: that day's reports for the line arrive a day late
            late = (lob == k) & (reported_day == d) & (day != d)
            reported_day[late] += 1
            dtr[late] += 1
    office = (channel == 1) | (channel == 2)
    seconds = np.where(office, rng.integers(8 * 3600, 18 * 3600, n), rng.integers(6 * 3600, 24 * 3600, n))
    reported_s = reported_day * 86400 + seconds

    med = np.array([t[3] for t in CLAIM_TYPES])
    sig = np.array([t[4] for t in CLAIM_TYPES])
    limit = pol.limit[policy]
    amount = np.round(np.minimum(med[ctype] * np.exp(sig[ctype] * rng.standard_normal(n)), 1.5 * limit), 2)

    # claim ids follow reporting time
    order = np.lexsort((rng.random(n), reported_s))
    c: dict[str, np.ndarray] = {
        name: values[order]
        for name, values in (
            ("policy", policy),
            ("customer", customer),
            ("lob", lob),
            ("ctype", ctype),
            ("channel", channel),
            ("day", day),
            ("reported_s", reported_s),
            ("amount", amount),
            ("dtr", dtr),
            ("limit", limit),
        )
    }
    c["region"] = cust.region[c["customer"]]
    c["deductible"] = pol.deductible[c["policy"]]

    # prior claims of the same customer
    by_customer = np.lexsort((np.arange(n), c["customer"]))
    sorted_c = c["customer"][by_customer]
    first = np.r_[True, sorted_c[1:] != sorted_c[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    c["prior"] = np.empty(n, np.int64)
    c["prior"][by_customer] = np.arange(n) - group_start

    c["fraud"] = _draw_fraud(
        rng,
        amount=c["amount"],
        ctype=c["ctype"],
        limit=c["limit"],
        dtr=c["dtr"],
        prior=c["prior"],
        channel=c["channel"],
        policy_age=c["day"] - pol.start[c["policy"]],
        lob=c["lob"],
        customer_age=cust.age[c["customer"]],
    )
    return _settle(rng, n_days, anomalies=_anomaly_table(picks, expected, injected, start64), **c)


def _assign_policies(rng: np.random.Generator, day: np.ndarray, lob: np.ndarray, pol: _Policies) -> np.ndarray:
    """A policy of the claim's line in force on the incident day, likelier for claim-prone ones."""
    policy = np.empty(len(day), np.int64)
    for k in range(5):
        rows = np.flatnonzero(lob == k)
        ids = np.flatnonzero(pol.lob == k)
        cum = np.cumsum(pol.propensity[ids])
        cum /= cum[-1]
        pending = np.arange(len(rows))
        # rejection sampling: each round redraws the claims whose policy was not in force
        for _ in range(40):
            if not pending.size:
                break
            cand = ids[np.minimum(np.searchsorted(cum, rng.random(pending.size), side="right"), len(ids) - 1)]
            d = day[rows[pending]]
            ok = (pol.start[cand] <= d) & (pol.end[cand] >= d)
            policy[rows[pending[ok]]] = cand[ok]
            pending = pending[~ok]
        if pending.size:  # the long-standing policies cover every day
            anchors = ids[pol.long_standing[ids]]
            policy[rows[pending]] = anchors[pending % len(anchors)]
    return policy


def _draw_delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days from incident to report: 0 for 42%, else 1 + floor(lognormal(median 2.5))."""
    later = 1 + np.floor(rng.lognormal(np.log(2.5), 1.0, n)).astype(np.int64)
    return np.where(rng.random(n) < 0.42, 0, np.minimum(later, 365))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _draw_fraud(
    rng: np.random.Generator,
    *,
    amount: np.ndarray,
    ctype: np.ndarray,
    limit: np.ndarray,
    dtr: np.ndarray,
    prior: np.ndarray,
    channel: np.ndarray,
    policy_age: np.ndarray,
    lob: np.ndarray,
    customer_age: np.ndarray,
    rate: float = 0.045,
) -> np.ndarray:
    """The fraud label from a logistic model over claim features; the intercept hits ``rate``."""
    med = np.array([t[3] for t in CLAIM_TYPES])
    sig = np.array([t[4] for t in CLAIM_TYPES])
    z_amount = (np.log(amount) - np.log(med[ctype])) / sig[ctype]
    logit = (
        1.6 * z_amount
        + 1.5 * (amount > 0.5 * limit)
        + 2.0 * (dtr > 10)
        + 1.0 * (dtr > 30)
        + 0.6 * np.minimum(prior, 5)
        + np.array([0.6, 0.0, -1.0, 0.3])[channel]  # web, phone, agent, app
        + 2.8 * (policy_age < 60)
        + 1.2 * ((policy_age >= 60) & (policy_age < 180))
        + np.array([0.3, 0.0, -0.5, 0.7, -0.7])[lob]  # auto, home, health, travel, life
        + 0.4 * (customer_age < 30)
    )
    lo, hi = -20.0, 5.0
    for _ in range(50):  # the intercept by bisection: mean probability equals the target rate
        mid = (lo + hi) / 2
        if _sigmoid(logit + mid).mean() > rate:
            hi = mid
        else:
            lo = mid
    return rng.random(len(amount)) < _sigmoid(logit + (lo + hi) / 2)


def _settle(rng: np.random.Generator, n_days: int, *, anomalies: pa.Table, **c: np.ndarray) -> _Claims:
    """Status, payment plan and last change per claim, from its age and fraud label."""
    n = len(c["day"])
    end_s = n_days * 86400 - 1
    age_days = (end_s - c["reported_s"]) // 86400
    group = np.where(age_days < 14, 0, np.where(age_days < 60, 1, 2)) * 2 + c["fraud"]
    #                         open  review approved denied paid
    mix = np.array(
        [
            [0.60, 0.40, 0.00, 0.00, 0.00],  # recent, honest
            [0.30, 0.70, 0.00, 0.00, 0.00],  # recent, fraud
            [0.10, 0.30, 0.25, 0.10, 0.25],  # weeks old, honest
            [0.00, 0.60, 0.05, 0.30, 0.05],  # weeks old, fraud
            [0.02, 0.04, 0.04, 0.12, 0.78],  # older, honest
            [0.00, 0.15, 0.03, 0.60, 0.22],
        ]
    )  # older, fraud (some get through)
    status = _categorical(rng, mix, group)
    paid, approved = status == 4, status == 2
    plan = np.where(paid | approved, 1 + _categorical(rng, np.array([0.7, 0.2, 0.1]), size=n), 0)
    plan = np.where(approved, np.maximum(plan, 2), plan)
    count = np.where(paid, plan, np.where(approved, 1, 0))
    window = end_s - c["reported_s"]
    first = rng.integers(5, 46, n) * 86400 + rng.integers(0, 8 * 3600, n)
    gap = np.full(n, 30 * 86400)
    # Instalments that fall after the end date have not been paid yet (squeezing them into the
    # window would pile payments onto the last days and trip the volume gates): a paid claim
    # whose plan is not complete by then is still approved and paying.
    due = np.where(first <= window, 1 + (window - first) // gap, 0)
    count = np.minimum(count, due)
    status = np.where(paid & (count < plan), 2, status)
    last = first + np.maximum(count - 1, 0) * gap
    decided = np.minimum(rng.integers(1, 60, n) * 86400, window)
    touched = np.minimum(rng.integers(0, 10 * 86400, n), window)
    updated = c["reported_s"] + np.where(count > 0, last, np.where(status == 3, decided, touched))
    payout = np.clip(c["amount"] - c["deductible"], 0.1 * c["amount"], c["limit"])
    return _Claims(
        policy=c["policy"],
        customer=c["customer"],
        lob=c["lob"],
        ctype=c["ctype"],
        region=c["region"],
        channel=c["channel"],
        day=c["day"],
        reported_s=c["reported_s"],
        amount=c["amount"],
        status=status,
        dtr=c["dtr"],
        prior=c["prior"],
        fraud=c["fraud"],
        updated_s=updated,
        pay_count=count,
        pay_plan=plan,
        pay_first=first,
        pay_gap=gap,
        payout=np.round(payout, 2),
        anomalies=anomalies,
    )


def _anomaly_table(
    picks: list[tuple[int, int, str, float, int]], expected: np.ndarray, injected: np.ndarray, start64: np.datetime64
) -> pa.Table:
    order = np.argsort([d for d, *_ in picks], kind="stable")
    return pa.table(
        {
            "day": _days(start64, np.array([picks[i][0] for i in order])),
            "line_of_business": [LINES_OF_BUSINESS[picks[i][1]] for i in order],
            "kind": [picks[i][2] for i in order],
            "expected_claims": np.round(expected[order], 3),
            "injected_claims": injected[order].astype(np.int32),
        }
    )


def _claim_batches(
    rng: np.random.Generator, claims: _Claims, cust: _Customers, start64: np.datetime64
) -> Iterator[pa.Table]:
    """The claims table in batches of :data:`_CHUNK`, notes composed batch by batch."""
    n = len(claims.day)
    base_s = start64.astype("datetime64[s]")
    type_names = tuple(t[0] for t in CLAIM_TYPES)
    assert cust.email is not None and cust.phone is not None
    for lo in range(0, n, _CHUNK):
        s = slice(lo, min(lo + _CHUNK, n))
        ids = np.arange(lo + 1, s.stop + 1, dtype=np.int64)
        cust_idx = pa.array(claims.customer[s].astype(np.int64))
        notes = compose_notes(
            rng,
            claim_ids=ids,
            claim_type=claims.ctype[s],
            type_names=type_names,
            channel=claims.channel[s],
            status=claims.status[s],
            is_fraud=claims.fraud[s],
            amounts=claims.amount[s],
            reported_day=start64 + (claims.reported_s[s] // 86400).astype("timedelta64[D]"),
            emails=pc.take(cust.email, cust_idx),
            phones=pc.take(cust.phone, cust_idx),
        )
        yield pa.table(
            {
                "claim_id": ids,
                "policy_id": claims.policy[s] + 1,
                "customer_id": claims.customer[s].astype(np.int64) + 1,
                "line_of_business": _labels(LINES_OF_BUSINESS, claims.lob[s]),
                "claim_type": _labels(type_names, claims.ctype[s]),
                "region": _labels(REGIONS, claims.region[s]),
                "channel": _labels(CHANNELS, claims.channel[s]),
                "incident_date": _days(start64, claims.day[s]),
                "reported_at": pa.array(base_s + claims.reported_s[s].astype("timedelta64[s]")),
                "amount": claims.amount[s],
                "status": _labels(CLAIM_STATUSES, claims.status[s]),
                "days_to_report": claims.dtr[s].astype(np.int32),
                "prior_claims": claims.prior[s].astype(np.int32),
                "adjuster_notes": notes,
                "is_fraud": claims.fraud[s],
                "updated_at": pa.array(base_s + claims.updated_s[s].astype("timedelta64[s]")),
            }
        )


def _prefetch(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Build the next batch on a worker thread while the caller loads this one.

    Composing notes (pyarrow) and inserting (DuckDB) both release the GIL, so on two cores they
    overlap. Only the worker draws random numbers, in the same order as without it.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="aiw-sample") as pool:
        pending = pool.submit(next, batches, None)
        while (batch := pending.result()) is not None:
            pending = pool.submit(next, batches, None)
            yield batch


def _build_payments(rng: np.random.Generator, claims: _Claims, start64: np.datetime64) -> pa.Table:
    """One row per instalment paid: all of them for paid claims, the first for approved ones."""
    paying = claims.pay_count > 0
    rows = np.repeat(np.arange(len(claims.day)), claims.pay_count)
    first_row = np.repeat(np.cumsum(claims.pay_count)[paying] - claims.pay_count[paying], claims.pay_count[paying])
    k = np.arange(len(rows)) - first_row  # instalment number within its claim
    plan = claims.pay_plan[rows]
    # instalment shares: 1 | u, 1-u | 0.7u, (1-0.7u)w, rest; the last takes the rounding remainder
    u = rng.uniform(0.3, 0.7, len(rows))
    w = rng.uniform(0.4, 0.6, len(rows))
    share = np.select(
        [plan == 1, (plan == 2) & (k == 0), plan == 2, k == 0, k == 1],
        [1.0, u, 1 - u, 0.7 * u, (1 - 0.7 * u) * w],
        default=0.0,
    )
    total = np.round(claims.payout[rows] * 100).astype(np.int64)
    cents = np.round(total * share).astype(np.int64)
    paid_before = np.cumsum(cents) - cents - np.r_[0, np.cumsum(cents)][first_row]
    cents = np.where(k == plan - 1, total - paid_before, cents)
    paid_s = claims.reported_s[rows] + claims.pay_first[rows] + k * claims.pay_gap[rows]
    method = _categorical(rng, np.array([0.78, 0.08, 0.06, 0.08]), size=len(rows))
    method[(method == 3) & (claims.lob[rows] > 1)] = 0  # repairers are paid for cars and homes only
    return pa.table(
        {
            "payment_id": np.arange(1, len(rows) + 1, dtype=np.int64),
            "claim_id": rows.astype(np.int64) + 1,
            "paid_at": pa.array(start64.astype("datetime64[s]") + paid_s.astype("timedelta64[s]")),
            "amount": cents / 100.0,
            "method": _labels(PAYMENT_METHODS, method),
        }
    )


# -- loading -------------------------------------------------------------------------------------
def _load(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    batches: Iterable[pa.Table],
    loaded: Callable[[int], None] | None = None,
) -> int:
    """Create ``_aiw_stage_<table>`` and fill it from Arrow batches in one transaction.

    ``loaded(rows_so_far)`` is called after each batch.
    """
    columns = TABLES[table]
    stage = f"{_STAGE}{table}"
    names = ", ".join(c for c, _ in columns)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DROP TABLE IF EXISTS {stage}")
        conn.execute(f"CREATE TABLE {stage} ({', '.join(f'{c} {t}' for c, t in columns)})")
        rows = 0
        for batch in batches:
            conn.register("_aiw_batch", batch)
            try:
                conn.execute(f"INSERT INTO {stage} SELECT {names} FROM _aiw_batch")
            finally:
                conn.unregister("_aiw_batch")
            rows += batch.num_rows
            if loaded:
                loaded(rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return rows


def _step_reporter(report: ProgressCallback, step: str, total: int) -> Callable[[int], None]:
    return lambda done: report(step, done, total)


def _publish(conn: duckdb.DuckDBPyConnection) -> None:
    """Swap every staged table in, in one transaction."""
    conn.execute("BEGIN TRANSACTION")
    try:
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"ALTER TABLE {_STAGE}{table} RENAME TO {table}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _drop_stages(conn: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {_STAGE}{table}")


# -- the entry point -----------------------------------------------------------------------------
def generate(
    workspace: Workspace,
    rows: int = 100_000,
    seed: int = 42,
    end_date: date | str | None = None,
    progress: ProgressCallback | None = None,
    *,
    actor: str = "system",
) -> SampleSummary:
    """Generate the insurer's sample tables and documents into ``workspace``.

    Args:
        workspace: The workspace; its warehouse receives the tables, its ``documents_dir`` the
            Markdown documents. It is initialised when it is not yet.
        rows: Number of claims, in [100, 50,000,000]. Customers are half of it (at least 30)
            and policies three quarters (at least 60); payments follow from the paid and
            approved claims.
        seed: Seed of the one random generator: equal seeds and end dates give equal tables.
        end_date: Last day of the three-year claims window (a date or ``YYYY-MM-DD``); default
            today in UTC.
        progress: Optional ``progress(step_name, done, total)``, called as work advances.
        actor: Who asked, for the audit record.

    Returns:
        A :class:`SampleSummary` of what was written.

    Raises:
        InvalidInputError: ``rows``, ``seed`` or ``end_date`` is out of range or malformed.
        BackendError: the warehouse cannot be opened (another process may hold it).
    """
    rows, seed, end = _check_rows(rows), _check_seed(seed), _check_end_date(end_date)
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInputError(f"The 'actor' parameter of generate must be a non-empty string. Got {actor!r} instead.")
    started = time.perf_counter()
    report: ProgressCallback = progress or (lambda _step, _done, _total: None)
    workspace.ensure()
    start = _three_years_before(end)
    n_days = (end - start).days + 1
    start64 = np.datetime64(start, "D")
    details = {"rows": rows, "seed": seed, "end_date": end.isoformat()}
    n_customers, n_policies = max(30, rows // 2), max(60, rows * 3 // 4)
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}

    conn = workspace.connect_warehouse(ai_functions=False)
    try:
        _drop_stages(conn)  # leftovers of a run that was killed
        try:
            rng = np.random.default_rng(seed)
            t = time.perf_counter()
            cust = _draw_customers(rng, n_customers)
            pol = _draw_policies(rng, n_policies, cust, n_days)
            claims = _draw_claims(rng, rows, cust, pol, start64, n_days)
            draw_s = time.perf_counter() - t
            first_start = np.full(n_customers, n_days - 1, dtype=np.int64)
            np.minimum.at(first_start, pol.customer, pol.start)

            # (table, rows it will have, batches); the claims' notes are composed while loading
            steps: list[tuple[str, int, Callable[[], Iterable[pa.Table]]]] = [
                ("customers", n_customers, lambda: [_build_customers(rng, cust, first_start, start64, n_days)]),
                ("policies", n_policies, lambda: [_build_policies(rng, pol, start64, n_days)]),
                ("claims", rows, lambda: _prefetch(_claim_batches(rng, claims, cust, start64))),
                ("payments", int(claims.pay_count.sum()), lambda: [_build_payments(rng, claims, start64)]),
                ("sample_anomalies", claims.anomalies.num_rows, lambda: [claims.anomalies]),
            ]
            for name, total, build in steps:
                t = time.perf_counter()
                report(name, 0, total)
                counts[name] = _load(conn, name, build(), _step_reporter(report, name, total))
                seconds[name] = time.perf_counter() - t
            seconds["claims"] += draw_s

            t = time.perf_counter()
            docs = sample_documents()
            report("documents", 0, len(docs))
            counts["documents"] = _load(conn, "documents", [_build_documents(docs, end)])
            _write_documents(workspace.documents_dir, docs)
            seconds["documents"] = time.perf_counter() - t
            report("documents", len(docs), len(docs))

            t = time.perf_counter()
            report("publish", 0, len(TABLES))
            _publish(conn)
            seconds["publish"] = time.perf_counter() - t
            report("publish", len(TABLES), len(TABLES))
        except BaseException as exc:
            # the previous tables are untouched; clean up and audit, without hiding the cause
            try:
                _drop_stages(conn)
            except Exception as drop_exc:
                exc.add_note(f"Staging tables _aiw_stage_* were left behind ({drop_exc}); the next run drops them.")
            try:
                workspace.audit.append(
                    actor,
                    "data.generate",
                    "warehouse",
                    "failure",
                    {**details, "error": f"{type(exc).__name__}: {exc}"[:500]},
                )
            except Exception as audit_exc:
                exc.add_note(f"The failure could not be audited: {audit_exc}")
            raise
    finally:
        conn.close()

    fraud_rate = float(claims.fraud.mean())
    summary = SampleSummary(
        rows=counts,
        seconds=seconds,
        total_seconds=time.perf_counter() - started,
        seed=seed,
        start_date=start,
        end_date=end,
        fraud_rate=fraud_rate,
        anomalies=claims.anomalies.num_rows,
        documents_dir=workspace.documents_dir,
    )
    workspace.audit.append(
        actor,
        "data.generate",
        "warehouse",
        "success",
        {**details, "tables": counts, "fraud_rate": round(fraud_rate, 4)},
    )
    return summary


def tour_step(ctx: TourContext) -> None:
    """Tour: generate ``ctx.rows`` claims with ``ctx.seed`` and print one line per table."""
    summary = generate(ctx.workspace, rows=ctx.rows, seed=ctx.seed, actor="tour")
    ctx.facts["sample"] = summary
    for table, n in summary.rows.items():
        ctx.console.print(f"  {table:<17} {n:>11,} rows  ({summary.seconds.get(table, 0.0):.1f} s)")
    ctx.console.print(
        f"  claims from {summary.start_date} to {summary.end_date}; fraud rate "
        f"{summary.fraud_rate:.1%}; {summary.anomalies} injected volume anomalies; "
        f"documents in {summary.documents_dir}"
    )
