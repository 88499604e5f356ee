from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_liveagreement"),
    ]

    operations = [
        migrations.AlterField(
            model_name="trainingrun",
            name="kind",
            field=models.CharField(
                choices=[
                    ("reward", "Reward model"),
                    ("sft", "Supervised fine-tuning"),
                    ("ppo", "PPO"),
                    ("grpo", "GRPO"),
                    ("rloo", "RLOO"),
                    ("dpo", "DPO"),
                    ("battle", "Policy battle"),
                ],
                default="reward",
                max_length=8,
            ),
        ),
    ]
