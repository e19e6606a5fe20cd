"""The problem definition form in Chromium: keyboard only, errors next to the fields, the metric list follows the
problem type, and a valid definition lands on its project page with the expected ROI."""

from apps.accounts.choices import Role
from apps.projects.models import Project
from tests.factories import UserFactory


def test_stakeholder_files_a_definition_with_the_keyboard(page, live_server, login):
    login(page, live_server, UserFactory(role=Role.STAKEHOLDER))
    page.goto(f"{live_server.url}/projects/new/")

    page.get_by_label("Title").fill("Churn reduction")
    page.keyboard.press("Tab")
    page.keyboard.type("Customers cancel without warning.")
    page.get_by_label("Problem type").select_option("regression")
    visible = page.eval_on_selector_all(
        "#id_primary_metric option", "os => os.filter(o => !o.hidden).map(o => o.value)"
    )
    assert visible == ["", "rmse", "mae", "mape", "r2"]
    page.get_by_label("Problem type").select_option("binary")
    page.get_by_label("Primary success metric").select_option("f1")
    page.get_by_label("Threshold").fill("1.5")
    page.get_by_label("Value of each correct decision").fill("40")
    page.get_by_label("Cost of each false positive").fill("5")
    page.get_by_label("Cost of each false negative").fill("120")
    page.get_by_label("Expected decisions a year").fill("100000")
    page.get_by_label("Implementation cost").fill("150000")
    page.get_by_label("Expected correct rate").fill("0.9")
    page.get_by_role("button", name="File the problem definition").focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()

    error = page.locator("#id_primary_threshold_error")
    assert error.inner_text() == "F1 is a share: enter a value between 0 and 1."
    described_by = page.get_attribute("#id_primary_threshold", "aria-describedby")
    assert "id_primary_threshold_error" in described_by.split()
    assert Project.objects.count() == 0

    page.get_by_role("link", name="Threshold").click()  # the error summary links to the field
    assert page.evaluate("document.activeElement.id") == "id_primary_threshold"
    page.keyboard.press("Control+A")
    page.keyboard.type("0.8")
    page.get_by_role("button", name="File the problem definition").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/projects/*/")

    project = Project.objects.get()
    assert page.url == f"{live_server.url}/projects/{project.pk}/"
    assert page.locator("#project-status").inner_text() == "Draft"
    # 0.9*40 - 0.1*(0.5*5 + 0.5*120) = 29.75 a decision, 100 000 decisions, no baseline
    assert page.locator("#roi-yearly-gain").inner_text() == "2,975,000.00 EUR"
