import pytest

from app.core.jobs.templates import render_email


def test_both_parts_carry_the_values_and_html_escapes_them() -> None:
    message = render_email(
        "password_changed",
        to="ada@example.com",
        subject="Your password was changed",
        full_name='<script>alert("x")</script> & Co',
        email="ada@example.com",
    )
    assert message.to == "ada@example.com"
    assert message.subject == "Your password was changed"
    assert '<script>alert("x")</script> & Co' in message.text
    assert message.html is not None
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in message.html
    assert "<script>" not in message.html


def test_a_value_the_template_needs_cannot_be_left_out() -> None:
    with pytest.raises(KeyError, match="email"):
        render_email("password_changed", to="ada@example.com", subject="s", full_name="Ada")
