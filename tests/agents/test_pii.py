"""The PII redactor (`agents.pii`): each kind in English and Portuguese formats, written and
said digit by digit, its placeholder and spans; what is not personal data (a number failing its
check digits, an order number, a time, a price, a date outside a birth context) is left as it
was; a tenant's policy redacts only its kinds."""

from __future__ import annotations

import pytest

from agents.pii import ALL_KINDS, PLACEHOLDERS, Redaction, find, parse_kinds, redact
from agents.pii_rules import cnpj_ok, cpf_ok, luhn_ok, ssn_ok

CARD = "4111 1111 1111 1111"  # Visa's test number: Luhn holds


def check(text: str, expected: str, kinds: tuple[str, ...]) -> Redaction:
    result = redact(text)
    assert result.text == expected, text
    assert result.kinds == kinds, text
    return result


# ---- check digits ----


def test_check_digits() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")  # Visa, Amex
    assert not luhn_ok("4111111111111112")
    assert cpf_ok("52998224725") and not cpf_ok("52998224726") and not cpf_ok("11111111111")
    assert cnpj_ok("11222333000181") and not cnpj_ok("11222333000182")
    assert not cnpj_ok("00000000000000")
    assert ssn_ok("123456789") and not ssn_ok("666123456") and not ssn_ok("123004567")


# ---- each kind ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"My card is {CARD}.", "My card is [CARD]."),
        ("card 4111-1111-1111-1111 thanks", "card [CARD] thanks"),
        ("it's 4111111111111111", "it's [CARD]"),
        ("Amex 3782 822463 10005 please", "Amex [CARD] please"),
        ("o cartão é 5555 5555 5555 4444", "o cartão é [CARD]"),
        ("four one one one one one one one one one one one one one one one", "[CARD]"),
        ("my card is four one one one, double one one one, 1111 1111 ok",
         "my card is [CARD] ok"),
    ],
)  # fmt: skip
def test_cards_in_any_grouping_and_spoken(text: str, expected: str) -> None:
    check(text, expected, ("card",))


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("meu CPF é 529.982.247-25", "meu CPF é [CPF]", "cpf"),
        ("é 52998224725, anota", "é [CPF], anota", "cpf"),
        ("CPF 529 982 247 26", "CPF [CPF]", "cpf"),  # named: redacted though a digit is off
        ("o CNPJ é 11.222.333/0001-81", "o CNPJ é [CNPJ]", "cnpj"),
        ("cnpj 11222333000181", "cnpj [CNPJ]", "cnpj"),
        ("CEP 01310-100, São Paulo", "CEP [CEP], São Paulo", "cep"),
        ("meu cep é 01310100", "meu cep é [CEP]", "cep"),
        ("my SSN is 123-45-6789", "my SSN is [SSN]", "ssn"),
        ("social security number 123 45 6789", "social security number [SSN]", "ssn"),
    ],
)
def test_national_ids(text: str, expected: str, kind: str) -> None:
    check(text, expected, (kind,))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my account number is 12345678", "my account number is [ACCOUNT]"),
        ("routing 021000021", "routing [ACCOUNT]"),
        ("agência 1234 conta 56789-0", "agência [ACCOUNT] conta [ACCOUNT]"),
        ("a conta poupança é 0012345-6", "a conta poupança é [ACCOUNT]"),
    ],
)
def test_bank_accounts_after_their_words(text: str, expected: str) -> None:
    check(text, expected, ("account",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.smith+vn@example.co.uk now", "mail [EMAIL] now"),
        ("it's john at example dot com", "it's [EMAIL]"),
        ("John dot Smith at gmail dot com.", "[EMAIL]."),
        ("john underscore doe at example.org", "[EMAIL]"),
        ("é joao ponto silva arroba gmail ponto com ponto br", "é [EMAIL]"),
        ("maria@empresa.com.br", "[EMAIL]"),
    ],
)
def test_emails_written_and_spoken(text: str, expected: str) -> None:
    check(text, expected, ("email",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me at +1 415 555 2671", "call me at [PHONE]"),
        ("+14155552671", "[PHONE]"),
        ("(415) 555-2671 is my cell", "[PHONE] is my cell"),
        ("it's 415-555-2671", "it's [PHONE]"),
        ("call 555-1212", "call [PHONE]"),
        ("my number is five five five one two three four five six seven",
         "my number is [PHONE]"),
        ("meu celular é (11) 98765-4321", "meu celular é [PHONE]"),
        ("+55 11 98765-4321", "[PHONE]"),
        ("liga no 11 3456-7890", "liga no [PHONE]"),
        ("whatsapp 98765-4321", "whatsapp [PHONE]"),
        ("é 11987654321", "é [PHONE]"),
    ],
)  # fmt: skip
def test_phone_numbers_e164_us_and_br(text: str, expected: str) -> None:
    check(text, expected, ("phone",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live at 42 Main Street, Apt 5.", "I live at [ADDRESS]."),
        ("send it to 1600 Pennsylvania Ave. please", "send it to [ADDRESS] please"),
        ("it's 221B Baker St", "it's [ADDRESS]"),
        ("moro na Rua das Flores, 123, apto 12", "moro na [ADDRESS]"),
        ("Av. Paulista 1578, São Paulo", "[ADDRESS], São Paulo"),
        ("na Avenida Brasil nº 500", "na [ADDRESS]"),
        ("travessa do Ouvidor, 34", "[ADDRESS]"),
        ("fica na rua Augusta, 1500 - sala 3", "fica na [ADDRESS]"),
    ],
)
def test_street_addresses(text: str, expected: str) -> None:
    check(text, expected, ("address",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I was born on March 3rd, 1985", "I was born on [DOB]"),
        ("date of birth is 03/04/1985.", "date of birth is [DOB]."),
        ("born on March third nineteen eighty five", "born on [DOB]"),
        ("DOB: 1985-03-04", "DOB: [DOB]"),
        ("data de nascimento: 3 de março de 1985", "data de nascimento: [DOB]"),
        ("nasci em 12/05/1990", "nasci em [DOB]"),
    ],
)
def test_dates_of_birth_in_a_birth_context(text: str, expected: str) -> None:
    check(text, expected, ("dob",))


# ---- what is not personal data ----


@pytest.mark.parametrize(
    "text",
    [
        "my card is 4111 1111 1111 1112",  # 16 digits, Luhn fails
        "four one one one one one one one one one one one one one one two",
        "my order number is 12345678901",
        "order number 4471 2290",
        "o protocolo é 2024 0001 5678",
        "pedido 52998224725",  # a valid CPF's digits, but after "pedido"
        "see you at 10:45",
        "at 3:30 pm tomorrow",
        "that's $1,299.99",
        "custa R$ 1.500,00",
        "it costs 1500 dollars",
        "my appointment is 03/04/2025",
        "my appointment is 03/04/2025 10:30",
        "I need 2 tickets for 7 people",
        "visit us at example dot com",
        "I'll be there in 5 minutes, way past noon",
        "the 3 of us drive there",
        "between 1985-2000",
        "a conta deu 150 reais",
        "na rua onde moro há 10 anos",
        "",
    ],
)
def test_what_is_not_personal_data_is_left_alone(text: str) -> None:
    result = redact(text)
    assert result == Redaction(text), result


# ---- lines, spans and policies ----


def test_a_line_keeps_its_other_words_and_spans_map_back() -> None:
    text = f"Sure: card {CARD}, email john at example dot com, thanks!"
    result = check(text, "Sure: card [CARD], email [EMAIL], thanks!", ("card", "email"))
    for span in result.spans:
        assert result.text[span.out_start : span.out_end] == PLACEHOLDERS[span.kind]
    card, email = result.spans
    assert text[card.start : card.end] == CARD
    assert text[email.start : email.end] == "john at example dot com"
    # what lies between the spans is the original text, unchanged
    assert result.text[: card.out_start] == text[: card.start]
    assert result.text[card.out_end : email.out_start] == text[card.end : email.start]
    assert result.text[email.out_end :] == text[email.end :]


def test_a_line_that_is_all_pii_becomes_its_placeholder_not_nothing() -> None:
    assert redact("john@example.com").text == "[EMAIL]"


def test_a_policy_redacts_only_its_kinds() -> None:
    text = f"card {CARD} and mail john@example.com"
    assert redact(text, {"email"}).text == f"card {CARD} and mail [EMAIL]"
    assert redact(text, {"email"}).kinds == ("email",)
    assert redact(text, frozenset()) == Redaction(text)
    # a card left in clear is still a card, never read as a phone number
    assert [f.kind for f in find(text)] == ["card", "email"]
    assert redact(text, {"phone"}) == Redaction(text)


def test_parse_kinds() -> None:
    assert parse_kinds(["card", "email", "card"]) == frozenset({"card", "email"})
    assert parse_kinds(ALL_KINDS) == ALL_KINDS
    with pytest.raises(ValueError, match="unknown kind 'iban'"):
        parse_kinds(["card", "iban"])
