"""Columns that look like personal data, by header and by content.

Header: the column name's tokens against patterns per kind (one header kind per column, most specific first, so
'email_address' is an e-mail and not an address). Content: each sampled value is classified as at most one kind, with
checksums where they exist (Luhn for card numbers, CPF check digits, SSN area/group/serial rules, IBAN mod 97); a
kind is reported when at least CONTENT_SHARE of the sampled non-missing values match. Finding:
{"column", "kind", "share" (fraction of sampled values that match; None for a header-only finding), "reason"}.
"""

import ipaddress
import re

from workers.ml.data.profile import name_tokens

CONTENT_SHARE = 0.5
LABELS = {
    "email": "e-mail addresses",
    "phone": "phone numbers",
    "ssn": "US social security numbers",
    "cpf": "CPF numbers (Brazilian taxpayer ids)",
    "card_number": "payment card numbers",
    "iban": "IBANs (bank account numbers)",
    "ip_address": "IP addresses",
    "name": "personal names",
    "address": "street addresses",
    "date_of_birth": "dates of birth",
}
CHECKSUM_NOTES = {
    "card_number": " with a valid Luhn checksum",
    "cpf": " with valid check digits",
    "iban": " with a valid checksum",
}

# Patterns over the name's tokens joined by "_" ("customerEMail" -> "customer_e_mail"), in priority order.
_HEADER = [
    ("email", re.compile(r"(^|_)e_?mails?(_|$)")),
    ("ip_address", re.compile(r"(^|_)(ip|ipv4|ipv6|ip_?addr(ess)?)(_|$)")),
    ("date_of_birth", re.compile(r"birth|(^|_)(dob|born|nascimento)(_|$)")),
    ("card_number", re.compile(r"(^|_)(card_?(number|no|num|nr)|credit_?card|cc_?(number|num|no)|pan)(_|$)")),
    ("iban", re.compile(r"(^|_)iban(_|$)")),
    ("cpf", re.compile(r"(^|_)cpf(_|$)")),
    ("ssn", re.compile(r"(^|_)(ssn|social_security(_number)?)(_|$)")),
    ("phone", re.compile(r"phone|(^|_)(tel|telephone|mobile|cell|msisdn|fax|celular|telefone)(_|$)")),
    (
        "name",
        re.compile(
            r"^name$|^nome$|surname|(^|_)(first|last|given|family|full|middle|maiden|customer|client|person|contact|"
            r"patient|employee|sur)_?names?(_|$)"
        ),
    ),
    (
        "address",
        re.compile(r"(^|_)(address|addr|street|zip|zip_?code|zipcode|postcode|postal(_?code)?|cep|endereco)(_|$)"),
    ),
]

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_CPF = re.compile(r"^\d{3}\.?\d{3}\.?\d{3}-?\d{2}$")
_SSN_FORMATTED = re.compile(r"^(\d{3})-(\d{2})-(\d{4})$")
_SSN_BARE = re.compile(r"^(\d{3})(\d{2})(\d{4})$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_PHONE = re.compile(r"^(\+\d[\d ().-]{6,19}|\(\d{2,4}\)\s?\d{3,5}[ .-]?\d{4}|\d{2,4}[ .-]\d{3,5}[ .-]?\d{4})$")
_NAME = re.compile(r"^[A-ZÀ-Þ][a-zß-ÿ'’-]+(?:\s+(?:[A-ZÀ-Þ][a-zß-ÿ'’.-]+|d[aeo]s?|van|von|de|del|la|le)){1,4}$")
_ADDRESS = re.compile(
    r"^(\d+[A-Za-z]?,?\s+(\S+\s+){0,5}(street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|way|court|ct|"
    r"place|pl|terrace|square|sq|highway|hwy)\b\.?"
    r"|(rua|avenida|av\.|travessa|alameda|calle|avenue|rue|via|praça)\s+\S+.*\d)",
    re.IGNORECASE,
)
# Common given names in the languages the platform's users write in (English, Portuguese, Spanish, French, German,
# Italian); a capitalised two-to-five word value starting with one of these reads as a person's name.
FIRST_NAMES = frozenset(
    """
    james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony mark
    donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob gary
    nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander frank patrick raymond
    jack dennis jerry tyler aaron jose adam nathan henry peter zachary douglas harold mary patricia jennifer linda
    elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra ashley kimberly emily donna michelle
    carol amanda dorothy melissa deborah stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna
    brenda pamela emma nicole helen samantha katherine christine debra rachel carolyn janet catherine maria heather
    diane ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith megan andrea cheryl
    hannah jacqueline martha gloria teresa ann sara madison frances kathryn janice jean abigail alice judy sophia
    grace denise amber doris marilyn danielle beverly isabella theresa diana natalie brittany charlotte marie kayla
    alexis lori joao jose antonio francisco carlos paulo pedro lucas luiz marcos luis gabriel rafael daniel marcelo
    bruno eduardo felipe raimundo rodrigo manoel mateus andre fernando fabio leonardo gustavo guilherme leandro tiago
    anderson ricardo marcio jorge sebastiao alexandre roberto edson diego vitor sergio claudio joana ana francisca
    antonia adriana juliana marcia fernanda patricia aline sandra camila amanda bruna jessica leticia julia luciana
    vanessa mariana gabriela vera vitoria larissa claudia beatriz rita luana sonia renata eliane josefa simone
    natalia cristiane carla debora rosangela jaqueline rosa daniela aparecida marlene terezinha raquel andreia
    fatima priscila juan javier miguel angel manuel alejandro rafael pablo sergio jorge alberto mercedes carmen
    dolores pilar isabel lucia cristina elena laura marta jean pierre michel philippe alain nicolas christophe
    francois frederic sophie nathalie isabelle sylvie catherine valerie christine hans peter klaus wolfgang jurgen
    stefan thomas andreas michael uwe ursula monika petra sabine giuseppe giovanni antonio mario luigi francesco
    angelo vincenzo pietro salvatore giulia francesca chiara paola sofia ali mohammed ahmed fatima wei li yan
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def header_kind(name: str) -> str | None:
    joined = "_".join(name_tokens(name))
    for kind, pattern in _HEADER:
        if pattern.search(joined):
            return kind
    return None


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def cpf_valid(digits: str) -> bool:
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    numbers = [int(c) for c in digits]
    for length in (9, 10):
        check = sum(n * w for n, w in zip(numbers[:length], range(length + 1, 1, -1), strict=True)) * 10 % 11 % 10
        if check != numbers[length]:
            return False
    return True


def ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def iban_valid(value: str) -> bool:
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def classify_value(value: str, *, ssn_hint: bool = False) -> str | None:
    """The PII kind one value looks like, or None."""
    text = value.strip()
    if not text or len(text) > 200:
        return None
    if "@" in text:
        return "email" if _EMAIL.match(text) else None
    compact = text.replace(" ", "").upper()
    if _IBAN.match(compact) and iban_valid(compact):
        return "iban"
    if _CARD.match(text):
        digits = re.sub(r"\D", "", text)
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits):
            return "card_number"
    if _CPF.match(text) and cpf_valid(re.sub(r"\D", "", text)):
        return "cpf"
    ssn = _SSN_FORMATTED.match(text) or (ssn_hint and _SSN_BARE.match(text))
    if ssn:
        return "ssn" if ssn_valid(*ssn.groups()) else None
    if any(c in text for c in ".:") and _looks_like_ip(text):
        return "ip_address"
    if _PHONE.match(text) and 7 <= sum(c.isdigit() for c in text) <= 15:
        return "phone"
    if _ADDRESS.match(text):
        return "address"
    if _NAME.match(text) and text.split()[0].lower() in FIRST_NAMES:
        return "name"
    return None


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def detect_pii(name: str, dtype: str, sample: list) -> list[dict]:
    """Findings for one column: its header kind (if any) and the kind most of its sampled values look like."""
    hinted = header_kind(name)
    counts: dict[str, int] = {}
    texts = [value for value in sample if isinstance(value, str)] if dtype == "string" else []
    for value in texts:
        kind = classify_value(value, ssn_hint=hinted == "ssn")
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    shares = {kind: count / len(texts) for kind, count in counts.items()} if texts else {}
    content_kind = max(shares, key=shares.get) if shares else None
    if content_kind is not None and shares[content_kind] < CONTENT_SHARE:
        content_kind = None

    findings = []
    if hinted:
        share = shares.get(hinted)
        if share is not None and share >= CONTENT_SHARE:
            reason = f"The column name suggests {LABELS[hinted]}, and {_values_phrase(hinted, share)}."
        else:
            share = None
            reason = f"The column name '{name}' suggests {LABELS[hinted]}."
        findings.append({"column": name, "kind": hinted, "share": share, "reason": reason})
    if content_kind and content_kind != hinted:
        share = shares[content_kind]
        findings.append(
            {
                "column": name,
                "kind": content_kind,
                "share": share,
                "reason": _values_phrase(content_kind, share) + ".",
            }
        )
    return findings


def _values_phrase(kind: str, share: float) -> str:
    return f"{round(share * 100)}% of sampled values look like {LABELS[kind]}{CHECKSUM_NOTES.get(kind, '')}"
