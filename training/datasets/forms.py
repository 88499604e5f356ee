"""The snapshot spec form of the snapshots page: parses the browser's fields into a ``SnapshotSpec``
(which validates itself), so the page, the live count and the API build the same spec."""

from __future__ import annotations

from django import forms

from training.datasets.spec import COMBINE_MODES, TIE_MODES, SnapshotSpec


class SnapshotSpecForm(forms.Form):
    name = forms.CharField(max_length=200, initial="snapshot")
    projects = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="exclusive"
    )
    exclude_gold = forms.BooleanField(required=False, initial=True, label="Leave out gold items")
    exclude_flagged = forms.BooleanField(
        required=False, initial=True, label="Leave out annotators with an open quality flag"
    )
    ties = forms.ChoiceField(choices=[(m, m) for m in TIE_MODES], initial="drop")
    both_bad = forms.ChoiceField(choices=[(m, m) for m in TIE_MODES], initial="drop", label="Both bad")
    combine = forms.ChoiceField(choices=[(m, m) for m in COMBINE_MODES], initial="majority")
    min_agreement = forms.FloatField(min_value=0, max_value=1, initial=0.0, required=False)
    seed = forms.IntegerField(initial=42, required=False)

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["projects"].choices = [(p.pk, p.name) for p in projects]

    def spec(self) -> SnapshotSpec:
        """The validated spec; raises ``ValidationError`` {field: [reason]}."""
        data = self.cleaned_data
        return SnapshotSpec.from_dict(
            {
                "projects": data["projects"],
                "date_from": data["date_from"].isoformat() if data["date_from"] else None,
                "date_to": data["date_to"].isoformat() if data["date_to"] else None,
                "exclude_gold": data["exclude_gold"],
                "exclude_flagged": data["exclude_flagged"],
                "ties": data["ties"],
                "both_bad": data["both_bad"],
                "combine": data["combine"],
                "min_agreement": data["min_agreement"] or 0.0,
                "seed": 42 if data["seed"] is None else data["seed"],
            }
        )
