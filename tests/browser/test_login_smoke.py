"""A user signs in through the real login form in a real browser."""

from playwright.sync_api import expect

from apps.accounts.choices import Role
from tests.factories import UserFactory


def test_user_logs_in_through_the_form_and_sees_the_navigation(page, live_server, login):
    user = UserFactory(username="dana", role=Role.SCIENTIST)

    login(page, live_server, user)

    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation).to_be_visible()
    expect(navigation.get_by_role("link", name="Projects")).to_be_visible()
    expect(page.locator(".usermenu")).to_contain_text("dana")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert "/accounts/login/" not in page.url


def test_wrong_password_shows_the_error_and_stays_on_the_login_page(page, live_server, login):
    user = UserFactory(username="erin", role=Role.SCIENTIST)

    login(page, live_server, user, password="not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    assert page.url.endswith("/accounts/login/")
