"""Dataset pages. Reads go through apps/datasets/selectors.py (what the user may not see is a 404), writes through
apps/datasets/services.py (which hold the rules and write the audit trail); permission decisions come from
apps.accounts.permissions. Data processing happens in the worker: these views only start jobs and show results."""

import uuid

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.datasets.choices import FINISHED_JOB_STATUSES, ValidationStatus
from apps.datasets.forms import (
    ColumnMarksForm,
    CompareForm,
    ConnectionForm,
    DatasetFilterForm,
    DatasetForm,
    OverrideForm,
    RulesForm,
    S3ImportForm,
    SqlImportForm,
    UploadForm,
)
from apps.datasets.selectors import (
    connection_get,
    connection_list,
    dataset_get,
    dataset_list,
    dataset_version_get,
    dataset_version_latest,
    dataset_version_list,
    ingestion_job_get,
    ingestion_job_list,
    project_list_for_dataset_ingest,
    version_compare,
    version_effective_columns,
)
from apps.datasets.services import (
    connection_create,
    connection_delete,
    dataset_column_marks_set,
    dataset_create,
    dataset_rules_set,
    ingestion_job_cancel,
    ingestion_start_s3,
    ingestion_start_sql,
    ingestion_start_upload,
    version_override_validation,
)
from apps.datasets.uploads import max_upload_bytes, upload_limit_text, upload_limited
from apps.projects.selectors import project_get, project_visible_queryset
from workers.ml.data.specs import DTYPES  # stdlib only: the one workers.ml module the portal may import

INVALID = 400
RECENT_JOBS = 10
HEAVY_VERSION_FIELDS = ("schema", "profile", "pii_findings", "validation_report", "validation_rules", "column_marks")


def _error_status(error: ApplicationError) -> int:
    return error.status if 400 <= error.status < 600 else INVALID


# --- List and create --------------------------------------------------------------------------------------------
class DatasetListView(LoginRequiredMixin, View):
    def get(self, request):
        filter_form = DatasetFilterForm(request.GET, projects=project_visible_queryset(actor=request.user))
        filters = {}
        if filter_form.is_valid():
            project = filter_form.cleaned_data.get("project")
            filters = {"project": project.pk if project else None, "search": filter_form.cleaned_data.get("search")}
        context = {
            "filter_form": filter_form,
            "page_obj": paginate(request, dataset_list(actor=request.user, filters=filters)),
            "can_create": bool(project_list_for_dataset_ingest(actor=request.user)),
        }
        template = "datasets/partials/dataset_table.html" if request.htmx else "datasets/dataset_list.html"
        return render(request, template, context)


class DatasetCreateView(LoginRequiredMixin, View):
    def get(self, request):
        projects = self._projects(request)
        initial = {"project": request.GET.get("project", "")}
        return self._render(request, DatasetForm(initial=initial, projects=projects))

    def post(self, request):
        form = DatasetForm(request.POST, projects=self._projects(request))
        if not form.is_valid():
            return self._render(request, form, status=INVALID)
        try:
            dataset = dataset_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, form, status=_error_status(error))
        messages.success(request, f"The dataset “{dataset.name}” is created. Upload its first version.")
        return redirect("datasets:detail", pk=dataset.pk)

    def _projects(self, request):
        projects = project_list_for_dataset_ingest(actor=request.user)
        if not projects:
            # The same words as require(): no project lets this user create a dataset.
            require(request.user, Action.DATASET_INGEST)
        return projects

    def _render(self, request, form, status=200):
        return render(request, "datasets/dataset_form.html", {"form": form}, status=status)


# --- The dataset page with its upload panel and imports ---------------------------------------------------------
def _detail_context(request, dataset, **forms) -> dict:
    user, project = request.user, dataset.project
    can_ingest = can(user, Action.DATASET_INGEST, project)
    can_manage_connections = can(user, Action.CONNECTION_MANAGE, project)
    connections = connection_list(actor=user, project=project) if can_ingest else None
    return {
        "dataset": dataset,
        "project": project,
        # The table needs no profile or schema: leave those (possibly large) documents in the database.
        "page_obj": paginate(request, dataset_version_list(dataset=dataset).defer(*HEAVY_VERSION_FIELDS)),
        "jobs": list(ingestion_job_list(actor=user, dataset=dataset)[:RECENT_JOBS]),
        "can_ingest": can_ingest,
        "can_edit_rules": can(user, Action.DATASET_EDIT, project),
        "can_mark_columns": can(user, Action.DATASET_MARK_COLUMNS, project),
        "can_manage_connections": can_manage_connections,
        "upload_limit": upload_limit_text(),
        "upload_form": forms.get("upload_form") or UploadForm(max_bytes=max_upload_bytes()),
        "s3_form": forms.get("s3_form") or S3ImportForm(),
        "sql_form": forms.get("sql_form") or (SqlImportForm(connections=connections) if can_ingest else None),
        "has_connections": bool(connections is not None and connections.exists()),
        "rules": dataset.validation_rules or {},
    }


class DatasetDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        return render(request, "datasets/dataset_detail.html", _detail_context(request, dataset))


def _upload_too_large(request, error):
    """The upload limit said no before the body was read (or while the CSRF check parsed it). This runs before the
    view: a signed-in user posting without JavaScript gets the dataset page (if they may see it) with the message."""
    dataset = None
    if not request.htmx and request.user.is_authenticated and request.resolver_match is not None:
        try:
            dataset = dataset_get(actor=request.user, pk=request.resolver_match.kwargs.get("pk"))
        except Http404:
            dataset = None
    return _upload_refused(request, dataset, error)


def _upload_refused(request, dataset, error: ApplicationError, form=None):
    """An upload the services (or the form) refused: the upload error partial for JavaScript, else the dataset page
    with the message next to the file input."""
    status = _error_status(error)
    if request.htmx or dataset is None:
        errors = error.errors or ({"file": form.errors["file"]} if form is not None and "file" in form.errors else {})
        context = {"message": error.message, "errors": errors}
        return render(request, "datasets/partials/upload_error.html", context, status=status)
    if form is None or not form.errors:
        form = UploadForm(max_bytes=max_upload_bytes())
        form.apply_errors(error.errors, message=error.message)
    return render(
        request, "datasets/dataset_detail.html", _detail_context(request, dataset, upload_form=form), status=status
    )


@method_decorator(upload_limited(on_too_large=_upload_too_large), name="dispatch")
class DatasetUploadView(LoginRequiredMixin, View):
    """POST <uuid>/upload/ (multipart "file"). The size limit is installed and the CSRF token checked by
    `upload_limited` before the body is parsed. JavaScript (upload.js) posts with XMLHttpRequest for the progress
    bar and gets the job status partial back; without JavaScript the form posts and lands on the job page."""

    def post(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_INGEST, dataset.project)
        try:
            form = UploadForm(request.POST, request.FILES, max_bytes=max_upload_bytes())
            if not form.is_valid():
                return _upload_refused(request, dataset, ApplicationError("Choose a file to upload."), form=form)
            upload = form.cleaned_data["file"]
            job = ingestion_start_upload(
                dataset=dataset, actor=request.user, stream=upload, display_name=upload.name, size=upload.size
            )
        except ApplicationError as error:
            return _upload_refused(request, dataset, error)
        if request.htmx:
            return render(request, "datasets/partials/job_status.html", _job_context(request, job), status=202)
        messages.success(request, f"“{job.source_display}” is uploaded; the ingestion job is queued.")
        return redirect("datasets:job", pk=job.pk)


class DatasetImportView(LoginRequiredMixin, View):
    """POST an import form from the dataset page; on success go to the job page, else show the page again with the
    errors next to the form's fields. Subclasses say which form, which service and what to tell the user."""

    form_context_name = ""
    success_message = ""

    def make_form(self, request, dataset):
        raise NotImplementedError

    def start(self, request, dataset, cleaned: dict):
        raise NotImplementedError

    def post(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_INGEST, dataset.project)
        form = self.make_form(request, dataset)
        if form.is_valid():
            try:
                job = self.start(request, dataset, form.cleaned_data)
            except ApplicationError as error:
                form.apply_errors(error.errors, message=error.message)
                status = _error_status(error)
            else:
                messages.success(request, self.success_message)
                return redirect("datasets:job", pk=job.pk)
        else:
            status = INVALID
        context = _detail_context(request, dataset, **{self.form_context_name: form})
        return render(request, "datasets/dataset_detail.html", context, status=status)


class DatasetImportS3View(DatasetImportView):
    form_context_name = "s3_form"
    success_message = "The import from S3 is queued."

    def make_form(self, request, dataset):
        return S3ImportForm(request.POST)

    def start(self, request, dataset, cleaned):
        return ingestion_start_s3(dataset=dataset, actor=request.user, uri=cleaned["uri"])


class DatasetImportSqlView(DatasetImportView):
    form_context_name = "sql_form"
    success_message = "The SQL import is queued."

    def make_form(self, request, dataset):
        return SqlImportForm(request.POST, connections=connection_list(actor=request.user, project=dataset.project))

    def start(self, request, dataset, cleaned):
        return ingestion_start_sql(dataset=dataset, actor=request.user, **cleaned)


# --- Ingestion jobs ---------------------------------------------------------------------------------------------
def _job_context(request, job) -> dict:
    finished = job.status in FINISHED_JOB_STATUSES
    return {
        "job": job,
        "finished": finished,
        "can_cancel": not finished and can(request.user, Action.DATASET_INGEST, job.project),
    }


class IngestionJobDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        job = ingestion_job_get(actor=request.user, pk=pk)
        return render(request, "datasets/ingestionjob_detail.html", _job_context(request, job))


class IngestionJobStatusView(LoginRequiredMixin, View):
    """The status partial htmx polls every second while the job is queued or running."""

    def get(self, request, pk):
        job = ingestion_job_get(actor=request.user, pk=pk)
        return render(request, "datasets/partials/job_status.html", _job_context(request, job))


class IngestionJobCancelView(LoginRequiredMixin, View):
    def post(self, request, pk):
        job = ingestion_job_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_INGEST, job.project)
        try:
            job = ingestion_job_cancel(job=job, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
            job = ingestion_job_get(actor=request.user, pk=pk)
        else:
            messages.success(request, "The ingestion job is cancelled.")
        if request.htmx:
            return render(request, "datasets/partials/job_status.html", _job_context(request, job))
        return redirect("datasets:job", pk=job.pk)


# --- Versions ---------------------------------------------------------------------------------------------------
def _profile_rows(version, columns: list[dict]) -> list[dict]:
    """The profile of each column next to its schema entry, marks and PII flags (in schema order). The most frequent
    values of a column flagged or marked as personal data are not repeated on the page (the counts stay)."""
    by_name = {entry.get("name"): entry for entry in version.profile or []}
    return [
        {
            "column": column,
            "profile": by_name.get(column["name"], {}),
            "hide_values": bool(column.get("pii")) or bool(column.get("personal")),
        }
        for column in columns
    ]


def _version_context(request, dataset, version, override_form=None) -> dict:
    columns = version_effective_columns(version=version)
    checks = (version.validation_report or {}).get("checks", [])
    overridden = bool(version.override_reason)
    blocked = version.validation_status == ValidationStatus.FAILED and not overridden
    return {
        "dataset": dataset,
        "project": dataset.project,
        "version": version,
        "columns": columns,
        "profile_rows": _profile_rows(version, columns),
        "checks": checks,
        "failed_count": sum(1 for check in checks if not check.get("passed")),
        "blocked": blocked,
        "overridden": overridden,
        "can_override": blocked and can(request.user, Action.DATASET_OVERRIDE_VALIDATION, dataset.project),
        "can_train": version.usable_for_training and can(request.user, Action.EXPERIMENT_LAUNCH, dataset.project),
        "can_mark_columns": can(request.user, Action.DATASET_MARK_COLUMNS, dataset.project),
        "override_form": override_form or OverrideForm(),
        "download_urls": _download_urls(dataset, version),
    }


def _download_urls(dataset, version) -> dict[str, str]:
    """The API's download endpoint (session authentication works for the browser too)."""
    base = reverse(
        "dataset-version-download",
        kwargs={"project_pk": dataset.project_id, "dataset_pk": dataset.pk, "number": version.number},
    )
    return {artifact: f"{base}?artifact={artifact}" for artifact in ("original", "parquet")}


class DatasetVersionDetailView(LoginRequiredMixin, View):
    def get(self, request, pk, number):
        dataset = dataset_get(actor=request.user, pk=pk)
        version = dataset_version_get(dataset=dataset, number=number)
        return render(request, "datasets/datasetversion_detail.html", _version_context(request, dataset, version))


class DatasetVersionOverrideView(LoginRequiredMixin, View):
    def post(self, request, pk, number):
        dataset = dataset_get(actor=request.user, pk=pk)
        version = dataset_version_get(dataset=dataset, number=number)
        require(request.user, Action.DATASET_OVERRIDE_VALIDATION, dataset.project)
        form = OverrideForm(request.POST)
        form.is_valid()
        try:
            version_override_validation(version=version, actor=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as error:
            if not error.errors:
                messages.error(request, error.message)
                return redirect("datasets:version", pk=dataset.pk, number=version.number)
            form.apply_errors(error.errors)
            context = _version_context(request, dataset, version, override_form=form)
            return render(request, "datasets/datasetversion_detail.html", context, status=_error_status(error))
        messages.success(request, f"Version {version.number} may now be used for training; the reason is recorded.")
        return redirect("datasets:version", pk=dataset.pk, number=version.number)


class DatasetCompareView(LoginRequiredMixin, View):
    """<uuid>/compare/?old=<n>&new=<m>: schema differences and the row-count change (default: the two newest)."""

    def get(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        numbers = list(dataset_version_list(dataset=dataset).values_list("number", flat=True))
        data = request.GET if {"old", "new"} <= set(request.GET) else None
        if data is None and len(numbers) >= 2:
            data = {"old": numbers[1], "new": numbers[0]}
        form = CompareForm(data, numbers=numbers)
        comparison = None
        if data is not None and form.is_valid():
            old = dataset_version_get(dataset=dataset, number=form.cleaned_data["old"])
            new = dataset_version_get(dataset=dataset, number=form.cleaned_data["new"])
            comparison = version_compare(old=old, new=new)
        context = {"dataset": dataset, "project": dataset.project, "form": form, "comparison": comparison}
        status = INVALID if data is not None and comparison is None else 200
        return render(request, "datasets/dataset_compare.html", context, status=status)


# --- Rules and column marks -------------------------------------------------------------------------------------
def _rule_columns(dataset, latest) -> list[dict]:
    """The newest version's columns, then any column the current rules name that the newest version lacks."""
    columns = [dict(column) for column in (latest.schema if latest else [])]
    known = {column["name"] for column in columns}
    rules = dataset.validation_rules or {}
    expected = rules.get("expected_columns") or {}
    mentioned = [
        *expected,
        *(rules.get("ranges") or {}),
        *(rules.get("allowed_categories") or {}),
        *(rules.get("unique_columns") or []),
    ]
    for name in dict.fromkeys(mentioned):
        if name not in known:
            columns.append({"name": name, "dtype": expected.get(name, ""), "semantic_type": "", "missing": True})
            known.add(name)
    return columns


class DatasetRulesView(LoginRequiredMixin, View):
    def get(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_EDIT, dataset.project)
        return self._render(request, dataset, self._form(dataset))

    def post(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_EDIT, dataset.project)
        form = self._form(dataset, data=request.POST)
        if form.is_valid():
            try:
                dataset_rules_set(dataset=dataset, actor=request.user, rules=form.rules())
            except ApplicationError as error:
                form.apply_errors(error.errors, message=error.message)
                return self._render(request, dataset, form, status=_error_status(error))
            messages.success(request, "The validation rules are saved; they apply to the next version.")
            return redirect("datasets:detail", pk=dataset.pk)
        return self._render(request, dataset, form, status=INVALID)

    def _form(self, dataset, data=None) -> RulesForm:
        latest = dataset_version_latest(dataset=dataset)
        columns = _rule_columns(dataset, latest)
        return RulesForm(data, columns=columns, rules=dataset.validation_rules or {}, dtypes=DTYPES)

    def _render(self, request, dataset, form, status=200):
        latest = dataset_version_latest(dataset=dataset)
        context = {"dataset": dataset, "project": dataset.project, "form": form, "latest": latest}
        return render(request, "datasets/dataset_rules.html", context, status=status)


class DatasetColumnMarksView(LoginRequiredMixin, View):
    def get(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_MARK_COLUMNS, dataset.project)
        latest = dataset_version_latest(dataset=dataset)
        return self._render(request, dataset, latest, self._form(dataset, latest))

    def post(self, request, pk):
        dataset = dataset_get(actor=request.user, pk=pk)
        require(request.user, Action.DATASET_MARK_COLUMNS, dataset.project)
        latest = dataset_version_latest(dataset=dataset)
        form = self._form(dataset, latest, data=request.POST)
        if form.is_valid():
            try:
                dataset_column_marks_set(dataset=dataset, actor=request.user, marks=form.marks())
            except ApplicationError as error:
                form.apply_errors(error.errors, message=error.message)
                return self._render(request, dataset, latest, form, status=_error_status(error))
            messages.success(request, "The column marks are saved.")
            return redirect("datasets:columns", pk=dataset.pk)
        return self._render(request, dataset, latest, form, status=INVALID)

    def _form(self, dataset, latest, data=None) -> ColumnMarksForm:
        columns = version_effective_columns(version=latest) if latest else []
        return ColumnMarksForm(data, columns=columns, marks=dataset.column_marks or {})

    def _render(self, request, dataset, latest, form, status=200):
        context = {"dataset": dataset, "project": dataset.project, "form": form, "latest": latest}
        return render(request, "datasets/dataset_columns.html", context, status=status)


# --- Connections ------------------------------------------------------------------------------------------------
def _connection_project(request, value):
    """The project named by ?project=<uuid> (a malformed or invisible one is a 404), if the user manages its
    connections."""
    try:
        pk = uuid.UUID(str(value))
    except ValueError:
        raise Http404("Choose a project: connections/?project=<id>.") from None
    project = project_get(actor=request.user, pk=pk)
    require(request.user, Action.CONNECTION_MANAGE, project)
    return project


class DataConnectionListView(LoginRequiredMixin, View):
    """connections/?project=<uuid>: the project's read-only database connections and a form to register one."""

    def get(self, request):
        project = _connection_project(request, request.GET.get("project"))
        return self._render(request, project, ConnectionForm())

    def post(self, request):
        project = _connection_project(request, request.GET.get("project") or request.POST.get("project"))
        form = ConnectionForm(request.POST)
        if form.is_valid():
            try:
                connection = connection_create(project=project, actor=request.user, **form.cleaned_data)
            except ApplicationError as error:
                form.apply_errors(error.errors, message=error.message)
                return self._render(request, project, form, status=_error_status(error))
            messages.success(request, f"The connection “{connection.name}” is registered.")
            return redirect(f"{reverse('datasets:connections')}?project={project.pk}")
        return self._render(request, project, form, status=INVALID)

    def _render(self, request, project, form, status=200):
        context = {
            "project": project,
            "form": form,
            "page_obj": paginate(request, connection_list(actor=request.user, project=project)),
        }
        return render(request, "datasets/dataconnection_list.html", context, status=status)


class DataConnectionDeleteView(LoginRequiredMixin, View):
    def post(self, request, pk):
        project = _connection_project(request, request.POST.get("project"))
        connection = connection_get(actor=request.user, project=project, pk=pk)
        try:
            connection_delete(connection=connection, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"The connection “{connection.name}” is removed.")
        return redirect(f"{reverse('datasets:connections')}?project={project.pk}")
