"""The judgment form, built from a project's settings (allowed choices, strength, rationale, criteria)."""

from __future__ import annotations

import uuid

from django import forms

from annotation.models import Choice, Project

STRENGTH_LABELS = [("1", "Slightly better"), ("2", "Clearly better"), ("3", "Much better")]
CRITERION_LABELS = [("A", "A"), ("B", "B"), ("tie", "Same")]


class JudgmentForm(forms.Form):
    choice = forms.ChoiceField(widget=forms.RadioSelect)
    strength = forms.ChoiceField(choices=STRENGTH_LABELS, required=False, widget=forms.RadioSelect)
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=10000)
    time_spent_ms = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, project: Project, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.project = project
        choices = [(Choice.A.value, "A is better"), (Choice.B.value, "B is better")]
        if project.allow_tie:
            choices.append((Choice.TIE.value, "Tie"))
        if project.allow_both_bad:
            choices.append((Choice.BOTH_BAD.value, "Both bad"))
        self.fields["choice"].choices = choices
        if not project.ask_strength:
            del self.fields["strength"]
        self.fields["rationale"].required = project.rationale_required
        self.criteria_names = list(project.extra_criteria or [])
        for name in self.criteria_names:
            self.fields[f"criterion_{name}"] = forms.ChoiceField(
                label=name, choices=CRITERION_LABELS, required=False, widget=forms.RadioSelect
            )

    def criteria_fields(self):
        return [self[f"criterion_{name}"] for name in self.criteria_names]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        criteria = {n: data[f"criterion_{n}"] for n in self.criteria_names if data.get(f"criterion_{n}")}
        return {
            "choice": data["choice"],
            "strength": data.get("strength") or None,
            "rationale": data.get("rationale", ""),
            "criteria": criteria,
            "time_spent_ms": data.get("time_spent_ms") or 0,
            "idempotency_key": data["idempotency_key"],
        }

    def add_service_errors(self, error) -> None:
        for field, messages in error.message_dict.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)


class AdjudicationForm(forms.Form):
    choice = forms.ChoiceField(choices=Choice.choices, widget=forms.RadioSelect)
    strength = forms.ChoiceField(choices=STRENGTH_LABELS, required=False, widget=forms.RadioSelect)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SkipForm(forms.Form):
    reason = forms.CharField(required=False, max_length=200)
