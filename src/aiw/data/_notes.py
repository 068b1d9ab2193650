"""Adjuster notes: varied free text composed, vectorised, from many small parts.

A note is a sequence of optional parts: a claim reference, an opener (generic or specific to
the channel), an observation built from a polarity template around a detail specific to the
claim type, the amount in one of several formats, the customer's demeanour, sometimes a fraud
cue, sometimes contact details (PII for ``ai_redact`` to find), a next step that fits the
claim's status (with a date in some), and a sign-off. Every part has typo'd variants picked
now and then. The combinations (and the amounts, dates and references) make nearly every note
distinct, while the sentiment follows the status: denied claims read more negative, paid ones
more positive.

Parts are taken from Arrow string pools by index and joined with
``pyarrow.compute.binary_join_element_wise``, so a million notes cost about a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CHANNELS", "CLAIM_STATUSES", "compose_notes"]

CHANNELS = ("web", "phone", "agent", "app")
CLAIM_STATUSES = ("open", "under_review", "approved", "denied", "paid")

_TYPO_P = 0.025  # chance that any one part carries a typo

# -- openers ----------------------------------------------------------------------------------
_OPENERS = [
    "Spoke with the policyholder today.",
    "Called the insured this morning.",
    "Initial review of the file completed.",
    "File reviewed.",
    "First contact made with the claimant.",
    "Follow-up call with the customer.",
    "Desk review done.",
    "Reviewed the notification and the attachments.",
    "Took over the file from the previous handler.",
    "Returned the customer's call.",
    "Claim triaged on arrival.",
    "Received the signed claim form.",
    "Checked cover and policy terms.",
    "Second review after new documents arrived.",
    "Quick note after the phone call.",
    "Update after speaking with the insured.",
    "Notes from the site visit.",
    "Reviewed photos uploaded by the claimant.",
    "Spoke to the customer's partner with consent on file.",
    "Email received from the policyholder.",
    "Voicemail left; the customer called back later.",
    "Case picked up from the queue.",
    "Morning call with the claimant.",
    "Late afternoon call with the insured.",
    "Policy in force on the date of loss.",
    "Checked the claim against the policy schedule.",
    "Reviewed the file ahead of the weekly claims meeting.",
    "Call with the claimant, about ten minutes.",
]
_CHANNEL_OPENERS = {
    "web": [
        "Claim submitted through the web portal.",
        "Online claim form received overnight.",
        "Web submission with scanned documents.",
        "Portal claim, documents uploaded in one go.",
    ],
    "phone": [
        "Loss reported over the phone to the contact centre.",
        "Customer phoned in the loss.",
        "FNOL taken by phone.",
        "Claim opened from a phone call to the hotline.",
    ],
    "agent": [
        "Agent submitted the claim on the customer's behalf.",
        "Broker notified us of the loss.",
        "Claim passed on by the customer's agent.",
        "Agent called ahead of the written notice.",
    ],
    "app": [
        "Claim lodged in the mobile app with photos.",
        "App submission, photos attached.",
        "Customer used the app to report the loss.",
        "Mobile app claim with a short video.",
    ],
}

# -- observations: polarity templates around a claim-type detail ("{}" marks the detail) -------
_OBS_TEMPLATES = {
    "pos": [
        "Inspection confirmed {}, consistent with the report.",
        "Photos clearly show {}; the documentation is complete and well organised.",
        "The repairer's report supports {}.",
        "Good evidence of {}, receipts provided promptly.",
        "Everything about {} checks out nicely.",
        "Clear and credible account of {}.",
        "Independent assessor agrees: {}.",
        "Straightforward claim for {}, all paperwork in order.",
        "Very helpful documents on {}, great quality photos.",
        "Quickly verified {}; no issues found.",
    ],
    "neg": [
        "Unable to verify {}; supporting documents are missing.",
        "Photos of {} are blurry and incomplete.",
        "Serious doubts about {}; the estimate looks inflated.",
        "Poor documentation for {}, repeated requests ignored.",
        "The account of {} is vague and unconvincing.",
        "No proof supplied for {}.",
        "Assessor disputes {}; the damage looks older than claimed.",
        "Problem: the invoice for {} is unreadable.",
        "Weak evidence of {} and no independent report.",
        "Frustrating file: {} still not substantiated after two reminders.",
    ],
    "neu": [
        "Claimant reports {}.",
        "Loss described as {}.",
        "Notification concerns {}.",
        "Reported cause: {}.",
        "Claim relates to {}.",
        "Customer states {}.",
        "Details given: {}.",
        "Initial description: {}.",
        "The file covers {}.",
        "According to the form, {}.",
    ],
}
_DETAILS = {
    "collision": [
        "a rear-end collision at a junction",
        "a low-speed collision in a car park",
        "damage to the front bumper after hitting a post",
        "a side impact at a roundabout",
        "a collision with a deer on a country road",
        "a scraped door and wing mirror",
        "a multi-vehicle collision on the motorway",
        "a dented bonnet after a skid on ice",
    ],
    "vehicle_theft": [
        "the theft of the vehicle from the driveway",
        "a stolen car taken overnight",
        "the vehicle stolen from a station car park",
        "theft of the car with the spare key",
        "a stolen van with tools inside",
        "the car taken while left running",
    ],
    "windscreen": [
        "a cracked windscreen from a stone chip",
        "a shattered rear window",
        "a chipped windscreen on the motorway",
        "a broken side window",
        "windscreen damage after a hailstorm",
        "a crack spreading across the windscreen",
    ],
    "vandalism": [
        "keyed paintwork along both doors",
        "slashed tyres outside the house",
        "a smashed wing mirror",
        "graffiti sprayed on the bonnet",
        "a broken window and damaged dashboard",
        "dents from a thrown object",
    ],
    "third_party_liability": [
        "damage to a third party's car",
        "a claim from a cyclist after a collision",
        "injury to a passenger in the other vehicle",
        "damage to a garden wall",
        "a third party whiplash claim",
        "damage to a parked vehicle",
    ],
    "water_damage": [
        "a burst pipe under the kitchen sink",
        "water damage to the kitchen ceiling",
        "a leak from the upstairs bathroom",
        "a failed washing machine hose",
        "a frozen pipe that split in the loft",
        "damp and water damage in the hallway",
        "an overflowing bath that soaked the floor",
        "a leaking boiler in the utility room",
    ],
    "storm": [
        "roof tiles blown off in the storm",
        "a fallen tree on the garage",
        "storm damage to the fence and shed",
        "a chimney damaged by high winds",
        "rain driven through a damaged roof",
        "a garden wall blown down in the gale",
    ],
    "fire": [
        "a kitchen fire started by a pan",
        "smoke damage throughout the ground floor",
        "an electrical fire in the garage",
        "fire damage to the living room",
        "a fire spreading from a neighbouring property",
        "a burnt-out conservatory",
    ],
    "burglary": [
        "a break-in through the back door",
        "jewellery stolen during a burglary",
        "laptops and a television taken in a break-in",
        "a forced window and stolen bicycles",
        "a burglary while the family was on holiday",
        "a stolen safe and cash",
    ],
    "home_liability": [
        "a visitor who slipped on the front steps",
        "damage to the neighbour's wall",
        "a dog bite to a delivery driver",
        "water leaking into the flat below",
        "a falling branch damaging a neighbour's car",
        "a guest injured on the stairs",
    ],
    "outpatient": [
        "an outpatient consultation with a specialist",
        "physiotherapy sessions for a knee",
        "a diagnostic scan",
        "blood tests and a follow-up appointment",
        "an outpatient procedure on the hand",
        "a course of treatment for back pain",
    ],
    "hospitalisation": [
        "a three-night hospital stay",
        "emergency admission after a fall",
        "surgery and inpatient care",
        "a hospital stay for pneumonia",
        "day-case surgery with an overnight stay",
        "an inpatient stay after an accident",
    ],
    "dental": [
        "emergency dental treatment",
        "a crown after a broken tooth",
        "a root canal treatment",
        "dental work after a sports injury",
        "an extraction and follow-up",
        "a replacement filling and check-up",
    ],
    "prescription": [
        "prescription costs for a chronic condition",
        "a course of antibiotics",
        "monthly prescriptions",
        "specialist medication after surgery",
        "prescribed pain relief",
        "repeat prescriptions over three months",
    ],
    "maternity": [
        "maternity care and delivery",
        "antenatal scans and consultations",
        "a planned caesarean section",
        "postnatal care in hospital",
        "a hospital delivery and two nights' stay",
    ],
    "trip_cancellation": [
        "a cancelled trip due to illness",
        "a holiday cancelled after a bereavement",
        "a trip cut short to return home",
        "a cancelled flight and hotel booking",
        "a cruise cancelled on medical advice",
        "a wedding trip cancelled at short notice",
    ],
    "lost_baggage": [
        "a suitcase lost on a connecting flight",
        "baggage delayed for four days",
        "a damaged suitcase and contents",
        "a bag stolen at the airport",
        "lost luggage with clothes and toiletries",
        "a missing bag on the return flight",
    ],
    "medical_abroad": [
        "emergency treatment abroad after a fall",
        "a hospital visit on holiday",
        "a broken wrist while skiing",
        "food poisoning treated at a local clinic",
        "medical repatriation after an accident",
        "an ambulance and A&E visit abroad",
    ],
    "flight_delay": [
        "a flight delay of more than twelve hours",
        "a missed connection after a delay",
        "an overnight delay at the airport",
        "a delay caused by a strike",
        "a cancelled flight rebooked the next day",
    ],
    "death_benefit": [
        "the death of the life assured",
        "a death benefit claim from the spouse",
        "a claim by the named beneficiary",
        "a death claim following a long illness",
        "a death claim after an accident",
    ],
    "critical_illness": [
        "a diagnosis of cancer",
        "a heart attack",
        "a stroke",
        "a diagnosis of multiple sclerosis",
        "kidney failure requiring dialysis",
    ],
    "disability": [
        "long-term disability after an accident",
        "inability to work after a back injury",
        "permanent disability following illness",
        "total disability after a stroke",
        "loss of use of a limb",
    ],
}

# -- amounts: "{}" is the formatted amount ---------------------------------------------------
_AMOUNT_TEMPLATES = [
    "Estimate received for {}.",
    "Claimed amount is {}.",
    "Invoice totals {}.",
    "Quote of {} on file.",
    "Reserve set at {}.",
    "Customer is asking for {}.",
    "Repair estimate: {}.",
    "Total claimed {}.",
    "Amount submitted: {}.",
    "Bills add up to {}.",
    "Loss valued at {} by the claimant.",
]

# -- demeanour ---------------------------------------------------------------------------------
_DEMEANOUR = {
    "pos": [
        "Customer was polite and very cooperative.",
        "Insured was friendly and grateful for the quick response.",
        "Policyholder appreciated the help; a very pleasant call.",
        "Claimant was calm, clear and helpful.",
        "Customer thanked us for the excellent service.",
        "Great attitude from the insured throughout.",
        "Policyholder is happy with the progress so far.",
        "Claimant was patient and understanding.",
        "Lovely conversation, the customer was relieved and pleased.",
        "Insured responded promptly to every request, very helpful.",
        "Customer said the app made it easy and was satisfied.",
        "Friendly and well prepared claimant.",
    ],
    "neg": [
        "Customer was angry and frustrated about the delays.",
        "Insured was rude and refused to answer several questions.",
        "Policyholder is upset and threatened to complain.",
        "Claimant was hostile and uncooperative.",
        "Customer is unhappy with the service and wants to cancel the policy.",
        "Insured complained loudly about poor communication.",
        "Claimant was aggressive on the phone and hung up.",
        "Customer is disappointed and annoyed by the repeated requests.",
        "Policyholder is dissatisfied and wants to escalate.",
        "Very difficult call, the insured was furious.",
        "Customer feels ignored and is considering legal action.",
        "Claimant is stressed and blames us for the delay.",
    ],
    "neu": [
        "Customer confirmed contact details.",
        "Insured asked about timelines.",
        "Policyholder will send the remaining documents.",
        "Claimant confirmed the bank details.",
        "Customer asked how the deductible applies.",
        "Insured requested updates by email.",
        "Claimant asked whether a courtesy car is available.",
        "Customer prefers contact in the afternoon.",
        "Policyholder confirmed nobody else is insured for this loss.",
        "Insured asked for a copy of the policy wording.",
    ],
    # contrasting sentences for mixed notes: they follow an observation of the other polarity
    "contrast_neg": [
        "However, the customer was frustrated by the delays.",
        "That said, the insured was rude during the call.",
        "But the policyholder is unhappy with the time this is taking.",
        "However, the claimant complained about poor communication.",
        "Unfortunately the customer is upset and threatened to escalate.",
        "Still, the insured was annoyed at having to resend documents.",
    ],
    "contrast_pos": [
        "That said, the insured was polite and cooperative throughout.",
        "On the plus side, the customer was patient and helpful.",
        "However, the claimant was friendly and responded quickly.",
        "Still, the policyholder was grateful and pleasant on the phone.",
        "The customer, to be fair, was calm and very cooperative.",
        "Good news is the insured was happy to provide more information.",
    ],
}

# -- fraud cues (fraud claims often, others rarely) --------------------------------------------
_CUES = [
    "Some details are inconsistent with the first notification.",
    "The story changed between the first and second call.",
    "Dates on the receipts do not match the incident date.",
    "Claimant was reluctant to provide original invoices.",
    "Similar claim history noted; consider a referral to the SIU.",
    "The witness could not be reached on the number given.",
    "Inconsistent account of where the loss happened.",
    "Receipts look altered; requested originals.",
    "Policy started only weeks before the loss, flag for review.",
    "Repair shop is linked to earlier questionable claims.",
    "Photos appear to come from a different location.",
    "Claimant pressed hard for a quick cash settlement.",
]

# -- contact details (PII for ai_redact): "{}" is the email or the phone -----------------------
_EMAIL_TEMPLATES = [
    "Customer asked to be contacted at {}.",
    "Alternative email given: {}.",
    "Send the settlement letter to {}.",
    "Documents will come from {}.",
    "Please reply to {} rather than the address on file.",
]
_PHONE_TEMPLATES = [
    "Best callback number: {}.",
    "Call back on {} after 5pm.",
    "Customer can be reached on {}.",
    "Mobile for the site visit: {}.",
    "Text updates to {} please.",
]

# -- next steps per status: "{}" is a date -----------------------------------------------------
_NEXT = {
    "open": [
        "Awaiting photos from the customer.",
        "Site visit booked for {}.",
        "Requested an itemised estimate; follow up on {}.",
        "Sent the claim form for signature.",
        "Waiting for the police reference number.",
        "Diary set to chase on {}.",
        "Asked for proof of purchase.",
        "Appointed a loss adjuster, visit on {}.",
    ],
    "under_review": [
        "Referred to a senior adjuster for review.",
        "Pending the police report.",
        "Waiting for medical records.",
        "Coverage question sent to underwriting.",
        "Expert report expected by {}.",
        "Reviewing the repair invoices line by line.",
        "Referred to the special investigations unit.",
        "Decision due by {}.",
    ],
    "approved": [
        "Claim approved; payment scheduled.",
        "Approved, first instalment to follow.",
        "Approved subject to the deductible.",
        "Settlement agreed on {}.",
        "Approved; payee details confirmed.",
        "Cover confirmed and claim approved.",
    ],
    "denied": [
        "Claim declined under the policy exclusions; letter sent.",
        "Declined: the loss is not covered; customer told about the complaints procedure.",
        "Rejected because the loss happened before the policy started.",
        "Denied after review; decision letter sent on {}.",
        "Declined for non-disclosure; case closed.",
        "Claim refused, no evidence of the loss; customer may appeal within 30 days.",
    ],
    "paid": [
        "Payment issued; file closed.",
        "Settlement paid in full; closing the file.",
        "Paid by bank transfer on {}.",
        "Final payment made, customer confirmed receipt.",
        "Paid less the deductible; claim closed.",
        "Payment sent to the payee on {}.",
    ],
}

# -- sentiment mix per status: positive, negative, mixed, neutral ------------------------------
_SENTIMENT_BY_STATUS = np.array(
    [
        [0.22, 0.15, 0.15, 0.48],  # open
        [0.15, 0.27, 0.25, 0.33],  # under_review
        [0.45, 0.10, 0.15, 0.30],  # approved
        [0.08, 0.57, 0.20, 0.15],  # denied
        [0.52, 0.08, 0.15, 0.25],  # paid
    ]
)

_MISSPELLINGS = {
    "received": "recieved",
    "the": "teh",
    "customer": "custmer",
    "damage": "damgae",
    "occurred": "occured",
    "separate": "seperate",
    "appointment": "apointment",
    "inspection": "inspecton",
    "insured": "insurd",
    "documents": "documnets",
    "payment": "paymnet",
    "policyholder": "policy holder",
    "claimant": "claimnat",
}


def _typo(text: str, k: int) -> str:
    """A deterministic typo of ``text``: a common misspelling when one fits, else swapped letters."""
    words = text.split(" ")
    for i, word in enumerate(words):
        bare = word.strip(".,;:").lower()
        if bare in _MISSPELLINGS and word[:1].islower():
            words[i] = word.replace(bare, _MISSPELLINGS[bare], 1)
            return " ".join(words)
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return text.replace(" ", "  ", 1)  # a doubled space is a typo too
    i = long_words[k % len(long_words)]
    w = words[i]
    j = 1 + k % (len(w) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


class _Pool:
    """Strings plus one typo'd variant of each, as an Arrow array to take from."""

    def __init__(self, texts: list[str]) -> None:
        self.n = len(texts)
        self.array = pa.array(texts + [_typo(t, k) for k, t in enumerate(texts)], pa.string())

    def pick(
        self, rng: np.random.Generator, size: int, present: np.ndarray | None = None, index: np.ndarray | None = None
    ) -> pa.Array:
        """Take ``size`` strings (given ``index`` or uniform), null where ``present`` is False."""
        idx = rng.integers(0, self.n, size) if index is None else index
        idx = idx + self.n * (rng.random(size) < _TYPO_P)
        mask = None if present is None else ~present
        return pc.take(self.array, pa.array(idx, pa.int64(), mask=mask))


def _split(templates: list[str]) -> tuple[_Pool, pa.Array]:
    """Templates with one ``{}`` slot as (pool of prefixes, array of suffixes)."""
    pre, post = zip(*(t.split("{}") for t in templates), strict=True)
    return _Pool(list(pre)), pa.array(list(post), pa.string())


def _wrap(rng: np.random.Generator, templates: list[str], fill: pa.Array, present: np.ndarray) -> pa.Array:
    """Put ``fill`` into a random template for each row; null where not ``present``."""
    prefixes, suffixes = _split(templates)
    which = rng.integers(0, prefixes.n, len(fill))
    pre = prefixes.pick(rng, len(fill), present, which)
    post = pc.take(suffixes, pa.array(which))
    return pc.binary_join_element_wise(pre, fill, post, "")


def _grouped(units: np.ndarray) -> pa.Array:
    """Whole numbers with thousands separators ("1,234,567")."""
    parts = []
    for level in (2, 1, 0):
        group = pc.cast(pa.array((units // 1000**level) % 1000), pa.string())
        higher = units >= 1000 ** (level + 1)
        shown = units >= 1000**level if level else np.ones(len(units), bool)
        # lower groups are padded to three digits, the leading group is not
        text = pc.if_else(pa.array(higher), pc.utf8_lpad(group, width=3, padding="0"), group)
        parts.append(pc.if_else(pa.array(shown), text, pa.scalar(None, pa.string())))
    return pc.binary_join_element_wise(*parts, ",", null_handling="skip")


def _format_amounts(rng: np.random.Generator, amounts: np.ndarray) -> pa.Array:
    """Amounts as "EUR 1,234.50", "€1,235", "1234.50 EUR" or "EUR 1235", picked per row."""
    cents = np.round(amounts * 100).astype(np.int64)
    units, frac = cents // 100, cents % 100
    rounded = np.round(amounts).astype(np.int64)
    decimals = pc.utf8_lpad(pc.cast(pa.array(frac), pa.string()), width=2, padding="0")
    plain = pc.cast(pa.array(units), pa.string())
    style = rng.integers(0, 4, len(amounts))
    return pc.choose(
        pa.array(style),
        pc.binary_join_element_wise("EUR ", _grouped(units), ".", decimals, ""),
        pc.binary_join_element_wise("€", _grouped(rounded), ""),
        pc.binary_join_element_wise(plain, ".", decimals, " EUR", ""),
        pc.binary_join_element_wise("EUR ", pc.cast(pa.array(rounded), pa.string()), ""),
    )


def _format_dates(rng: np.random.Generator, days: np.ndarray) -> pa.Array:
    """Dates as 14/03/2024, 2024-03-14 or 14 Mar, picked at random per row."""
    arr = pa.array(days.astype("datetime64[D]"))
    style = rng.integers(0, 3, len(days))
    return pc.choose(
        pa.array(style),
        pc.strftime(arr, format="%d/%m/%Y"),
        pc.strftime(arr, format="%Y-%m-%d"),
        pc.strftime(arr, format="%d %b"),
    )


def compose_notes(
    rng: np.random.Generator,
    *,
    claim_ids: np.ndarray,
    claim_type: np.ndarray,
    type_names: tuple[str, ...],
    channel: np.ndarray,
    status: np.ndarray,
    is_fraud: np.ndarray,
    amounts: np.ndarray,
    reported_day: np.ndarray,
    emails: pa.Array,
    phones: pa.Array,
) -> pa.Array:
    """Compose one adjuster note per claim.

    Args:
        rng: The generator's random source (draws happen in a fixed order: deterministic).
        claim_ids: Claim ids, quoted as references in some notes.
        claim_type: Index into ``type_names`` per claim.
        type_names: Claim type names, each with details in ``_DETAILS``.
        channel: Index into :data:`CHANNELS` per claim.
        status: Index into :data:`CLAIM_STATUSES` per claim.
        is_fraud: Fraud label per claim (adds subtle cues to some notes).
        amounts: Claimed amounts.
        reported_day: Reporting dates (``datetime64[D]``), the base of dates in next steps.
        emails: The customer's email per claim.
        phones: The customer's phone per claim.

    Returns:
        A string array with one note per claim.
    """
    n = len(claim_ids)
    parts: list[Any] = []

    # reference
    has_ref = rng.random(n) < 0.3
    ref = pc.binary_join_element_wise("Ref CLM-", pc.cast(pa.array(claim_ids), pa.string()), ":", "")
    parts.append(pc.if_else(pa.array(has_ref), ref, pa.scalar(None, pa.string())))

    # opener: generic or channel-specific
    has_opener = rng.random(n) < 0.85
    specific = rng.random(n) < 0.4
    generic = _Pool(_OPENERS).pick(rng, n, has_opener & ~specific)
    by_channel: Any = generic
    for c, name in enumerate(CHANNELS):
        rows = has_opener & specific & (channel == c)
        by_channel = pc.if_else(pa.array(rows), _Pool(_CHANNEL_OPENERS[name]).pick(rng, n), by_channel)
    parts.append(by_channel)

    # sentiment per note, drawn from the status' mix: 0 positive, 1 negative, 2 mixed, 3 neutral
    cum = _SENTIMENT_BY_STATUS.cumsum(axis=1)
    sentiment = (rng.random(n)[:, None] > cum[status]).sum(axis=1)
    mixed_pos_first = rng.random(n) < 0.5
    obs_polarity = np.select(
        [sentiment == 0, sentiment == 1, sentiment == 3, mixed_pos_first], [0, 1, 2, 0], default=1
    )  # 0 pos, 1 neg, 2 neu

    # observation: a detail of the claim type inside a template of the note's polarity
    names = list(type_names)
    flat = [d for t in names for d in _DETAILS[t]]
    counts = np.array([len(_DETAILS[t]) for t in names])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    detail_idx = offsets[claim_type] + (rng.random(n) * counts[claim_type]).astype(np.int64)
    detail = _Pool(flat).pick(rng, n, index=detail_idx)
    observation: Any = None
    for p, key in enumerate(("pos", "neg", "neu")):
        wrapped = _wrap(rng, _OBS_TEMPLATES[key], detail, obs_polarity == p)
        observation = wrapped if observation is None else pc.coalesce(observation, wrapped)
    parts.append(observation)

    # amount
    parts.append(_wrap(rng, _AMOUNT_TEMPLATES, _format_amounts(rng, amounts), rng.random(n) < 0.7))

    # demeanour: agrees with a positive/negative/neutral note, contrasts in a mixed one
    has_demeanour = rng.random(n) < 0.8
    demeanour_kind = np.select(
        [sentiment == 0, sentiment == 1, sentiment == 3, mixed_pos_first], [0, 1, 2, 3], default=4
    )
    demeanour: Any = None
    for k, key in enumerate(("pos", "neg", "neu", "contrast_neg", "contrast_pos")):
        rows = (demeanour_kind == k) & (has_demeanour | (k >= 3))  # mixed notes always contrast
        picked = _Pool(_DEMEANOUR[key]).pick(rng, n, rows)
        demeanour = picked if demeanour is None else pc.coalesce(demeanour, picked)
    parts.append(demeanour)

    # fraud cues: often on fraud, rarely on honest claims (the text is a hint, not the label)
    has_cue = rng.random(n) < np.where(is_fraud, 0.35, 0.015)
    parts.append(_Pool(_CUES).pick(rng, n, has_cue))

    # PII: an email or a phone number in about 6% of notes
    pii = rng.random(n)
    parts.append(_wrap(rng, _EMAIL_TEMPLATES, emails, pii < 0.035))
    parts.append(_wrap(rng, _PHONE_TEMPLATES, phones, (pii >= 0.035) & (pii < 0.065)))

    # next step for the status, a date a few days after the report filled in where asked for
    has_next = rng.random(n) < 0.9
    dates = _format_dates(rng, reported_day + rng.integers(2, 30, n).astype("timedelta64[D]"))
    next_step: Any = None
    for s, name in enumerate(CLAIM_STATUSES):
        rows = has_next & (status == s)
        with_date = [t for t in _NEXT[name] if "{}" in t]
        plain = [t for t in _NEXT[name] if "{}" not in t]
        dated = rng.random(n) < len(with_date) / len(_NEXT[name])
        a = _wrap(rng, with_date, dates, rows & dated)
        b = _Pool(plain).pick(rng, n, rows & ~dated)
        step = pc.coalesce(a, b)
        next_step = step if next_step is None else pc.coalesce(next_step, step)
    parts.append(next_step)

    # sign-off: adjuster initials
    letters = "ABCDEFGHJKLMNPRSTVW"
    pairs = pa.array([a + b for a in letters for b in letters], pa.string())
    initials = pc.take(pairs, pa.array(rng.integers(0, len(pairs), n)))
    sign = rng.integers(0, 3, n)
    signed = pc.choose(
        pa.array(sign),
        pc.binary_join_element_wise("- ", initials, ""),
        pc.binary_join_element_wise("Adjuster ", initials, ".", ""),
        pc.binary_join_element_wise("(", initials, ")", ""),
    )
    parts.append(pc.if_else(pa.array(rng.random(n) < 0.45), signed, pa.scalar(None, pa.string())))

    return pc.binary_join_element_wise(*parts, " ", null_handling="skip")
