"""The e-mail a training run sends to TrainProject's `notificationEmailAddress`, through the operator's SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pipeline.core.email_address import email_address
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.store.records import IterationRecord, ProjectRecord


def training_mail(sender: str, project: ProjectRecord, iteration: IterationRecord) -> EmailMessage:
    """The message: project, iteration and status, and for a failed run the reason. The recipient is checked
    again here (the row may predate the rule); EmailMessage itself refuses CR/LF in any header."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email_address(iteration.notification_email_address)
    message["Subject"] = f"Training {iteration.status}: {project.name}, {iteration.name}"
    lines = [
        f"Project: {project.name} ({project.id})",
        f"Iteration: {iteration.name} ({iteration.id})",
        f"Status: {iteration.status}",
    ]
    if iteration.status == IterationStatus.FAILED and iteration.training_error_details:
        lines.append(f"Reason: {iteration.training_error_details}")
    message.set_content("\n".join(lines) + "\n")
    return message


def send_mail(settings: Settings, message: EmailMessage) -> None:
    """Deliver `message` through the configured server (implicit TLS, STARTTLS or plain), logging in if a user
    is configured; every step is bounded by `smtp_timeout_seconds`."""
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds
    if settings.smtp_security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        server = smtplib.SMTP(host, port, timeout=timeout)
    with server:
        if settings.smtp_security == "starttls":
            server.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            server.login(settings.smtp_username, password)
        server.send_message(message)
