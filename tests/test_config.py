import subprocess
import sys

import pytest

from service.config import (
    GIB,
    MIB,
    TIB,
    ConfigError,
    Settings,
    mask_dsn,
    parse_size,
    upload_capacity,
)


def test_defaults_mean_embedded_default():
    settings = Settings.from_env({})
    assert settings.embedded_postgres
    assert settings.embedded_s3
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.s3_part_size == 8 * MIB
    assert settings.max_upload_bytes == 5 * TIB


def test_reads_every_documented_variable():
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:secret@db/x",
            "S3_ENDPOINT_URL": "http://s3:9000",
            "S3_BUCKET": "b",
            "S3_REGION": "eu-west-1",
            "S3_PREFIX": "p",
            "CASEVARS_PORT": "9000",
            "CASEVARS_S3_PART_SIZE": "16MiB",
            "CASEVARS_MAX_UPLOAD_BYTES": "1G",
            "CASEVARS_AUTO_CREATE_CASE_INSTANCES": "true",
            "CASEVARS_LOG_FORMAT": "console",
            "CASEVARS_SPLICE_DOWNLOADS": "false",
        }
    )
    assert not settings.embedded_postgres
    assert settings.s3_prefix == "p/"
    assert settings.port == 9000
    assert settings.s3_part_size == 16 * MIB
    assert settings.max_upload_bytes == GIB
    assert settings.auto_create_case_instances
    assert settings.log_format == "console"
    assert not settings.splice_downloads
    assert Settings().splice_downloads
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CASEVARS_PORT": "eighty"}, "CASEVARS_PORT"),
        ({"CASEVARS_PORT": "70000"}, "CASEVARS_PORT"),
        ({"CASEVARS_S3_PART_SIZE": "1MiB"}, "CASEVARS_S3_PART_SIZE"),
        ({"CASEVARS_S3_PART_SIZE": "lots"}, "CASEVARS_S3_PART_SIZE"),
        ({"CASEVARS_MAX_UPLOAD_BYTES": "6TiB"}, "CASEVARS_MAX_UPLOAD_BYTES"),
        ({"CASEVARS_S3_PARTS_IN_FLIGHT": "0"}, "CASEVARS_S3_PARTS_IN_FLIGHT"),
        ({"CASEVARS_AUTO_CREATE_CASE_INSTANCES": "maybe"}, "CASEVARS_AUTO_CREATE"),
        ({"CASEVARS_SPLICE_DOWNLOADS": "kernel"}, "CASEVARS_SPLICE_DOWNLOADS"),
        ({"CASEVARS_LOG_FORMAT": "xml"}, "CASEVARS_LOG_FORMAT"),
        ({"CASEVARS_LOG_LEVEL": "chatty"}, "CASEVARS_LOG_LEVEL"),
        ({"CASEVARS_GC_GRACE_SECONDS": "-1"}, "CASEVARS_GC_GRACE_SECONDS"),
        ({"CASEVARS_HEADER_TIMEOUT_SECONDS": "0"}, "CASEVARS_HEADER_TIMEOUT_SECONDS"),
        ({"CASEVARS_UPLOAD_LEASE_SECONDS": "0"}, "CASEVARS_UPLOAD_LEASE_SECONDS"),
        ({"CASEVARS_UPLOAD_LEASE_SECONDS": "-5"}, "CASEVARS_UPLOAD_LEASE_SECONDS"),
        ({"CASEVARS_UPLOAD_LEASE_SECONDS": "soon"}, "CASEVARS_UPLOAD_LEASE_SECONDS"),
        ({"CASEVARS_CLIENT_MIN_BYTES_PER_SECOND": "-1"}, "CASEVARS_CLIENT_MIN_BYTES"),
        ({"CASEVARS_CLIENT_MIN_BYTES_PER_SECOND": "nan"}, "CASEVARS_CLIENT_MIN_BYTES"),
        ({"CASEVARS_CLIENT_MIN_BYTES_PER_SECOND": "1KiB"}, "CASEVARS_CLIENT_MIN_BYTES"),
        ({"CASEVARS_KEEPALIVE_TIMEOUT_SECONDS": "0"}, "CASEVARS_KEEPALIVE_TIMEOUT_SECONDS"),
        ({"CASEVARS_AUTH_FILE": "/nonexistent/users"}, "CASEVARS_AUTH_FILE"),
        ({"CASEVARS_PROT": "8080"}, "CASEVARS_PROT"),
        ({"DATABASE_URL": "  "}, "DATABASE_URL"),
    ],
)
def test_bad_settings_name_the_variable(env, names):
    with pytest.raises(ConfigError, match=names):
        Settings.from_env(env)


def test_small_parts_cannot_reach_five_tib():
    # 5 MiB parts doubling every 1,000 parts hold a little under 5 TiB.
    assert upload_capacity(5 * MIB) < 5 * TIB
    assert upload_capacity(8 * MIB) > 5 * TIB
    with pytest.raises(ConfigError, match="raise the part size"):
        Settings.from_env({"CASEVARS_S3_PART_SIZE": "5MiB"})
    assert (
        Settings.from_env(
            {"CASEVARS_S3_PART_SIZE": "5MiB", "CASEVARS_MAX_UPLOAD_BYTES": "1TiB"}
        ).s3_part_size
        == 5 * MIB
    )


def test_sizes_and_dsn_masking():
    assert parse_size("123") == 123
    assert parse_size("2KiB") == 2048
    assert parse_size("1 gib") == GIB
    with pytest.raises(ValueError):
        parse_size("1.5GB")
    assert mask_dsn("postgresql://user:pw@host:5432/db") == "postgresql://user:***@host:5432/db"


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (["serve"], {"CASEVARS_PORT": "not-a-port"}),
        (["migrate"], {"CASEVARS_TYPO": "1"}),
    ],
)
def test_cli_reports_bad_configuration_in_one_line(command, env):
    result = subprocess.run(
        [sys.executable, "-m", "service", *command],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("casevars: configuration error: ")
    assert "CASEVARS_" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_unknown_command_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "service", "frobnicate"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_part_size_doubles_every_thousand_parts_up_to_s3_limit():
    from service.config import part_size_for

    assert part_size_for(0, 8 * MIB) == 8 * MIB
    assert part_size_for(999, 8 * MIB) == 8 * MIB
    assert part_size_for(1000, 8 * MIB) == 16 * MIB
    assert part_size_for(9999, 8 * MIB) == 4096 * MIB
    assert part_size_for(9999, 64 * MIB) == 5 * GIB  # S3's largest part
