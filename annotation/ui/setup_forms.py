"""Forms of the lead's pages: project settings, the import upload, invites, member roles, bulk task actions.
Forms parse and type what the browser sends; the services validate the rest and write."""

from __future__ import annotations

import json

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from annotation.importing import SHAPES
from annotation.models import Choice, ModelPairing, PairingStrategy, Project, Role, ServingOrder, TaskStatus
from annotation.services.invites import INVITE_MAX_DAYS
from annotation.services.projects import PROJECT_EDITABLE_FIELDS
from annotation.services.task_bulk import BULK_MAX_TASKS


class ProjectForm(forms.ModelForm):
    """Every editable project setting. ``extra_criteria`` is typed as one name per line and
    ``quality_settings`` as a JSON object; the service runs the model's own validation."""

    extra_criteria = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Extra per-task questions, one per line (e.g. helpful, harmless).",
    )
    # The API's bounds (annotation.api.core.projects.ProjectViewSet.InputSerializer), checked before the
    # service so each bad value is named on its field.
    overlap_k = forms.IntegerField(min_value=1, max_value=100, initial=1)
    gold_rate = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    swap_repeat_rate = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    # The serving settings are optional in a post (a client that predates them keeps the defaults).
    random_share = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=0.1,
        required=False,
        help_text="Serving order 'mix' and active model pairing: share of tasks served at random (marked).",
    )
    retrain_after_judgments = forms.IntegerField(
        min_value=0,
        max_value=10_000_000,
        required=False,
        help_text="Retrain the reward model after this many new judgments; empty: the server default; 0: never.",
    )
    retrain_agreement_drop = forms.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        help_text="Retrain when the active model's agreement with new votes falls this far below its test "
        "accuracy (e.g. 0.05); empty: off.",
    )
    quality_settings = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text='Thresholds for quality flags as a JSON object, e.g. {"gold_accuracy_min": 0.7}.',
    )

    def clean_serving_order(self):
        return self.cleaned_data.get("serving_order") or ServingOrder.QUEUE

    def clean_model_pairing(self):
        return self.cleaned_data.get("model_pairing") or ModelPairing.UNIFORM

    def clean_random_share(self):
        value = self.cleaned_data.get("random_share")
        return 0.1 if value is None else value

    class Meta:
        model = Project
        fields = list(PROJECT_EDITABLE_FIELDS)
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "guidelines": forms.Textarea(attrs={"rows": 14, "class": "mono", "data-markdown-source": ""}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("serving_order", "model_pairing"):
            self.fields[name].required = False
        if self.instance.pk:
            self.initial["extra_criteria"] = "\n".join(self.instance.extra_criteria or [])
            self.initial["quality_settings"] = json.dumps(self.instance.quality_settings or {}, indent=1)
        self.fields["gold_rate"].widget.attrs.update(step="0.01")
        self.fields["swap_repeat_rate"].widget.attrs.update(step="0.01")

    def clean_extra_criteria(self) -> list[str]:
        names = [line.strip() for line in self.cleaned_data["extra_criteria"].splitlines() if line.strip()]
        if any(len(n) > 100 for n in names):
            raise forms.ValidationError("Each criterion is at most 100 characters.")
        if len(names) > 20:
            raise forms.ValidationError("At most 20 criteria.")
        return names

    def clean_quality_settings(self) -> dict:
        raw = self.cleaned_data["quality_settings"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value

    def service_kwargs(self) -> dict:
        return {
            name: self.cleaned_data[name] for name in PROJECT_EDITABLE_FIELDS if name in self.cleaned_data
        }

    def _post_clean(self):
        # The service runs full_clean itself (after the overlap-k lock); skip ModelForm's copy, which
        # would also write the cleaned data onto the instance before the service sees the old values.
        pass

    def add_service_errors(self, error) -> None:
        for field, messages in error.message_dict.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text=".jsonl, .jsonl.gz, .json, .csv (.gz) or .parquet")
    shape = forms.ChoiceField(
        choices=[("", "Detect from the first record"), *[(s, s) for s in SHAPES]], required=False
    )
    pairing = forms.ChoiceField(
        choices=[("", "The project's strategy"), *PairingStrategy.choices], required=False
    )
    prior_judgments = forms.BooleanField(
        required=False, help_text="Store a pair's known preference as a prior judgment (pairs, hh_rlhf)."
    )

    def options(self) -> dict:
        data = self.cleaned_data
        return {
            "shape": data["shape"],
            "pairing": data["pairing"],
            "prior_judgments": data["prior_judgments"],
        }


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=INVITE_MAX_DAYS, initial=7, label="Expires in (days)"
    )


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ManyOptionsSelect(forms.Select):
    """A ``<select>`` whose options are written in one pass: Django's widget renders each option through
    a template, about half a millisecond apiece, which made the task browser of a 1,000-member project
    spend most of a second on its annotator filter."""

    def render(self, name, value, attrs=None, renderer=None):
        final_attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        selected = {str(v) for v in self.format_value(value)}
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((v, mark_safe(" selected") if str(v) in selected else "", label) for v, label in self.choices),
        )
        return format_html("<select{}>{}</select>", flatatt(final_attrs), options)


class TaskFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(choices=[("", "Any status"), *TaskStatus.choices], required=False)
    disagreement = forms.BooleanField(required=False, label="Disagreement")
    gold = forms.ChoiceField(
        choices=[("", "Gold or not"), ("yes", "Gold only"), ("no", "No gold")], required=False
    )
    annotator = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, widget=ManyOptionsSelect)
    judged_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    judged_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, annotators, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["annotator"].choices = [
            ("", "Any annotator"),
            *[(a["pk"], a["username"]) for a in annotators],
        ]


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("gold", "Mark gold"), ("reopen", "Reopen"), ("review", "Send to review")]
    )
    tasks = forms.TypedMultipleChoiceField(coerce=int, choices=())
    gold_choice = forms.ChoiceField(choices=[("", "—"), *Choice.choices], required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Ids are checked against the project by the service; the form only types and caps them.
        self.fields["tasks"].valid_value = lambda value: True

    def clean_tasks(self) -> list[int]:
        ids = self.cleaned_data["tasks"]
        if len(ids) > BULK_MAX_TASKS:
            raise forms.ValidationError(f"At most {BULK_MAX_TASKS} tasks at once.")
        return ids

    def clean(self):
        data = super().clean()
        if data.get("action") == "gold" and not data.get("gold_choice"):
            self.add_error("gold_choice", "Pick the gold answer.")
        return data
