import django.core.validators
from django.db import migrations, models

import audit.models


def tls_flag_to_security(apps, schema_editor):
    MailServer = apps.get_model("audit", "MailServer")
    MailServer.objects.filter(use_tls=True).update(security="starttls")


def security_to_tls_flag(apps, schema_editor):
    MailServer = apps.get_model("audit", "MailServer")
    MailServer.objects.exclude(security="none").update(use_tls=True)


class Migration(migrations.Migration):
    """One e-mail server for every mail: STARTTLS or TLS, several administrators, and the
    statistics reports' switches. The old STARTTLS flag and single recipient are carried over."""

    dependencies = [("audit", "0003_journal_mac")]

    operations = [
        migrations.AddField(
            model_name="mailserver", name="security",
            field=models.CharField(choices=[("none", "None (plain SMTP)"), ("starttls", "STARTTLS"),
                                            ("tls", "TLS from the start (SMTPS)")], default="none", max_length=8),
        ),
        migrations.RunPython(tls_flag_to_security, security_to_tls_flag),
        migrations.RemoveField(model_name="mailserver", name="use_tls"),
        migrations.RenameField(model_name="mailserver", old_name="recipient", new_name="administrators"),
        migrations.AlterField(
            model_name="mailserver", name="administrators",
            field=models.CharField(blank=True, default="", max_length=1000, validators=[audit.models.validate_addresses],
                                   help_text="Who receives the reports: one or more addresses, separated by commas."),
        ),
        migrations.AlterField(
            model_name="mailserver", name="port",
            field=models.PositiveIntegerField(default=25, validators=[django.core.validators.MinValueValidator(1),
                                                                      django.core.validators.MaxValueValidator(65535)]),
        ),
        migrations.AddField(model_name="mailserver", name="daily_report",
                            field=models.BooleanField(default=True, help_text="Mail yesterday's statistics every day.")),
        migrations.AddField(model_name="mailserver", name="weekly_report",
                            field=models.BooleanField(default=True, help_text="Mail last week's statistics every Monday.")),
        migrations.AddField(model_name="mailserver", name="monthly_report",
                            field=models.BooleanField(default=True, help_text="Mail last month's statistics on the 1st.")),
    ]
