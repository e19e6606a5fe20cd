"""PII detection by header and by content, with checksums telling real numbers from look-alikes."""

import pytest

from workers.ml.data.pii import classify_value, cpf_valid, detect_pii, header_kind, iban_valid, luhn_valid


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ana.silva@example.com", "email"),
        ("+55 11 98765-4321", "phone"),
        ("(11) 98765-4321", "phone"),
        ("555-123-4567", "phone"),
        ("123-45-6789", "ssn"),
        ("529.982.247-25", "cpf"),
        ("52998224725", "cpf"),
        ("4111 1111 1111 1111", "card_number"),
        ("5500-0000-0000-0004", "card_number"),
        ("GB82 WEST 1234 5698 7654 32", "iban"),
        ("DE89370400440532013000", "iban"),
        ("192.168.10.1", "ip_address"),
        ("2001:db8::1", "ip_address"),
        ("Maria Silva", "name"),
        ("John Smith", "name"),
        ("221B Baker Street", "address"),
        ("Rua das Flores, 123", "address"),
    ],
)
def test_each_kind_is_recognised_in_content(value, kind):
    assert classify_value(value) == kind


@pytest.mark.parametrize(
    "value",
    [
        "ana.silva@",  # not an address
        "4111 1111 1111 1112",  # Luhn fails
        "1234567812345678",  # Luhn fails
        "529.982.247-26",  # CPF check digit wrong
        "111.111.111-11",  # repeated digits are never a CPF
        "000-12-3456",  # SSN area 000
        "666-12-3456",  # SSN area 666
        "912-34-5678",  # SSN area 9xx
        "123-00-6789",  # SSN group 00
        "123456789",  # bare 9 digits are not an SSN without a hint
        "GB82 WEST 1234 5698 7654 33",  # IBAN checksum fails
        "999.1.1.1",  # not an IP
        "2024-01-05",  # a date, not a phone number
        "12345678901234",  # bare digits are not a phone number
        "New York",  # capitalised, but not a person
        "widget",
        "",
    ],
)
def test_look_alikes_are_not_pii(value):
    assert classify_value(value) is None


def test_a_bare_ssn_counts_when_the_header_says_ssn():
    assert classify_value("123456789", ssn_hint=True) == "ssn"
    assert classify_value("000456789", ssn_hint=True) is None


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert cpf_valid("52998224725") and not cpf_valid("52998224724") and not cpf_valid("00000000000")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB83WEST12345698765432")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("email", "email"),
        ("E-Mail", "email"),
        ("customerEmailAddress", "email"),
        ("phone_number", "phone"),
        ("tel", "phone"),
        ("mobile", "phone"),
        ("ssn", "ssn"),
        ("social_security_number", "ssn"),
        ("cpf", "cpf"),
        ("card_number", "card_number"),
        ("credit_card", "card_number"),
        ("iban", "iban"),
        ("ip_address", "ip_address"),
        ("client_ip", "ip_address"),
        ("first_name", "name"),
        ("surname", "name"),
        ("LastName", "name"),
        ("name", "name"),
        ("street", "address"),
        ("home_address", "address"),
        ("zip", "address"),
        ("postal_code", "address"),
        ("dob", "date_of_birth"),
        ("birth_date", "date_of_birth"),
        ("DateOfBirth", "date_of_birth"),
    ],
)
def test_headers_suggest_kinds(name, kind):
    assert header_kind(name) == kind


@pytest.mark.parametrize("name", ["age", "income", "product_name", "zipper_size", "telemetry", "description", "type"])
def test_ordinary_headers_suggest_nothing(name):
    assert header_kind(name) is None


def test_content_finding_reports_the_share_of_sampled_values():
    values = [f"user{i}@example.com" for i in range(62)] + [f"note {i}" for i in range(38)]
    assert detect_pii("contact", "string", values) == [
        {
            "column": "contact",
            "kind": "email",
            "share": 0.62,
            "reason": "62% of sampled values look like e-mail addresses.",
        }
    ]


def test_checksummed_kinds_say_so_in_the_reason():
    findings = detect_pii("payment", "string", ["4111 1111 1111 1111", "5500 0000 0000 0004"])
    assert findings == [
        {
            "column": "payment",
            "kind": "card_number",
            "share": 1.0,
            "reason": "100% of sampled values look like payment card numbers with a valid Luhn checksum.",
        }
    ]


def test_invalid_checksums_give_no_finding():
    assert detect_pii("value", "string", ["4111 1111 1111 1112", "1234 5678 1234 5678"]) == []
    assert detect_pii("value", "string", ["529.982.247-26", "123.456.789-00"]) == []
    assert detect_pii("value", "string", ["000-12-3456", "666-12-3456"]) == []


def test_header_and_content_agreeing_make_one_finding():
    findings = detect_pii("cpf", "string", ["529.982.247-25", "52998224725", "111.444.777-35"])
    assert findings == [
        {
            "column": "cpf",
            "kind": "cpf",
            "share": 1.0,
            "reason": "The column name suggests CPF numbers (Brazilian taxpayer ids), and 100% of sampled values look "
            "like CPF numbers (Brazilian taxpayer ids) with valid check digits.",
        }
    ]


def test_a_header_only_finding_has_no_share():
    assert detect_pii("ssn", "int64", []) == [
        {
            "column": "ssn",
            "kind": "ssn",
            "share": None,
            "reason": "The column name 'ssn' suggests US social security numbers.",
        }
    ]
    assert detect_pii("date_of_birth", "date", []) == [
        {"column": "date_of_birth", "kind": "date_of_birth", "share": None,
         "reason": "The column name 'date_of_birth' suggests dates of birth."}
    ]  # fmt: skip


def test_content_below_half_gives_no_finding():
    values = ["ana@example.com"] + ["plain"] * 9
    assert detect_pii("notes", "string", values) == []


def test_a_column_named_one_thing_holding_another_gets_both():
    findings = detect_pii("phone", "string", [f"u{i}@example.com" for i in range(10)])
    assert [(f["kind"], f["share"]) for f in findings] == [("phone", None), ("email", 1.0)]


def test_pipeline_flags_personal_columns_only(ingest):
    rows = "\n".join(
        f"{i},Customer {i},maria{i}@example.com,{'Maria Silva' if i % 2 else 'John Smith'},{30 + i % 40},gold"
        for i in range(200)
    )
    processed = ingest(f"id,label,contact,holder,age,tier\n{rows}\n".encode(), "people.csv")
    assert [(f["column"], f["kind"], f["share"]) for f in processed.pii_findings] == [
        ("contact", "email", 1.0),
        ("holder", "name", 1.0),
    ]
