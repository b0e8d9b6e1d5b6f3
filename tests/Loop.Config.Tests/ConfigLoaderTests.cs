using System.Collections;

namespace Loop.Config.Tests;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly LoopPaths _paths;

    public ConfigLoaderTests()
    {
        _paths = new LoopPaths(_temp.Combine("loop-home"), _temp.Combine("user"));
    }

    public void Dispose() => _temp.Dispose();

    private ConfigLoadResult Load(string? json = null, Dictionary<string, string>? environment = null)
    {
        if (json is not null)
        {
            _temp.Write("loop-home/config.json", json);
        }

        return ConfigLoader.Load(_paths, environment ?? []);
    }

    [Fact]
    public void Without_a_config_file_every_key_has_its_default()
    {
        var (config, warnings) = Load();

        Assert.Empty(warnings);
        Assert.Null(config.DiscordToken);
        Assert.Null(config.DiscordAppId);
        Assert.Null(config.DiscordGuildId);
        Assert.Equal(LogSeverity.Info, config.LogLevel);
        Assert.Equal(LogFormat.Text, config.LogFormat);
        Assert.Equal("loop-agent:latest", config.ContainerImage);
        Assert.Equal(300, config.ContainerTimeoutSec);
        Assert.Equal(512, config.ContainerMemoryMb);
        Assert.Equal(1.0, config.ContainerCpus);
        Assert.Null(config.ClaudeModel);
        Assert.Empty(config.Mounts);
        Assert.Empty(config.McpServers);
        Assert.Empty(config.TaskTemplates);
        Assert.Equal("127.0.0.1:8222", config.ApiAddr);
        Assert.Equal(_temp.Combine("loop-home", "loop.db"), config.DbPath);
        Assert.Equal("claude", config.ClaudeBinPath);
        Assert.Equal(RunnerKind.Docker, config.Runner);
        Assert.Equal(3, config.MaxConcurrentContainers);
        Assert.Empty(config.AllowedMountRoots);
        Assert.Equal(256, config.ContainerPidsLimit);
        Assert.Null(config.AnthropicApiKey);
        Assert.Null(config.ClaudeCodeOauthToken);
        Assert.Null(config.DiscordApiUrl);
        Assert.Null(config.DiscordGatewayUrl);
    }

    [Fact]
    public void The_file_accepts_comments_and_trailing_commas()
    {
        var (config, warnings) = Load("""
            {
              // the bot
              "discord_token": "tok", /* inline */
              "discord_app_id": "123",
              "container_timeout_sec": 600,
              "container_cpus": 2.5,
              "runner": "process",
              "mounts": [
                "~/.claude:~/.claude",   // sessions
                "~/.ssh:~/.ssh:ro",
              ],
              "allowed_mount_roots": ["~/datasets", "/srv/data",],
              "mcp": {
                "servers": {
                  "db": { "command": "npx", "args": ["-y", "server-postgres",], "env": { "DATABASE_URL": "postgresql://x" }, },
                },
              },
              "task_templates": [
                { "name": "daily", "description": "summary", "schedule": "0 17 * * *", "type": "cron", "prompt": "sum up", },
              ],
            }
            """);

        Assert.Empty(warnings);
        Assert.Equal("tok", config.DiscordToken);
        Assert.Equal("123", config.DiscordAppId);
        Assert.Equal(600, config.ContainerTimeoutSec);
        Assert.Equal(2.5, config.ContainerCpus);
        Assert.Equal(RunnerKind.Process, config.Runner);
        Assert.Equal(["~/.claude:~/.claude", "~/.ssh:~/.ssh:ro"], config.Mounts);
        Assert.Equal([_temp.Combine("user", "datasets"), "/srv/data"], config.AllowedMountRoots);
        var db = config.McpServers["db"];
        Assert.Equal("npx", db.Command);
        Assert.Equal(["-y", "server-postgres"], db.Args);
        Assert.Equal("postgresql://x", db.Env["DATABASE_URL"]);
        Assert.Equal(new TaskTemplateConfig("daily", "summary", "0 17 * * *", "cron", "sum up"), Assert.Single(config.TaskTemplates));
    }

    [Fact]
    public void A_syntax_error_names_the_file_line_and_column()
    {
        var error = Assert.Throws<ConfigException>(() => Load("""
            {
              "log_level": "info"
              "log_format": "json"
            }
            """));

        var file = _paths.ConfigFile;
        Assert.StartsWith($"{file}:3:3: ", error.Message);
        Assert.DoesNotContain("LineNumber", error.Message);
    }

    [Fact]
    public void A_value_of_the_wrong_type_names_the_key_and_shows_a_valid_example()
    {
        var error = Assert.Throws<ConfigException>(() => Load("""{ "container_timeout_sec": "300" }"""));

        Assert.Contains(_paths.ConfigFile, error.Message);
        Assert.Contains("'container_timeout_sec' must be a whole number", error.Message);
        Assert.Contains("\"container_timeout_sec\": 300", error.Message);
    }

    [Fact]
    public void A_wrong_type_inside_mcp_names_the_nested_key()
    {
        var error = Assert.Throws<ConfigException>(() => Load("""{ "mcp": { "servers": { "db": { "command": "npx", "args": "-y" } } } }"""));

        Assert.Contains("'mcp.servers.db.args' must be a list of strings", error.Message);
    }

    [Fact]
    public void The_api_rate_limit_defaults_to_120_a_minute_and_0_turns_it_off()
    {
        Assert.Equal(120, Load().Config.ApiRateLimitPerMinute);
        Assert.Equal(0, Load("""{ "api_rate_limit_per_minute": 0 }""").Config.ApiRateLimitPerMinute);
        Assert.Equal(30, Load(environment: new() { ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "30" }).Config.ApiRateLimitPerMinute);
        var error = Assert.Throws<ConfigException>(() => Load("""{ "api_rate_limit_per_minute": -5 }"""));
        Assert.Contains("api_rate_limit_per_minute", error.Message);
    }

    [Fact]
    public void Allowed_hosts_take_names_and_host_port_and_refuse_a_url_saying_what_to_write()
    {
        Assert.Empty(Load().Config.AllowedHosts);
        var config = Load("""{ "allowed_hosts": ["loop.example.com", "proxy.example.com:8443", "192.168.1.20", "[fd00::1]:8222"] }""").Config;
        Assert.Equal(["loop.example.com", "proxy.example.com:8443", "192.168.1.20", "[fd00::1]:8222"], config.AllowedHosts);

        foreach (var wrong in new[] { "https://loop.example.com/", "loop.example.com/dashboard", "*.example.com", "", "loop example" })
        {
            var error = Assert.Throws<ConfigException>(() => Load($$"""{ "allowed_hosts": ["{{wrong}}"] }"""));
            Assert.Contains(_paths.ConfigFile, error.Message);
            Assert.Contains("'allowed_hosts' entries must be a host name or host:port", error.Message);
            Assert.Contains($"(found \"{wrong}\")", error.Message);
        }
    }

    [Theory]
    [InlineData("Loop.Example.COM.", "loop.example.com", null)]
    [InlineData("loop.example.com:8443", "loop.example.com", 8443)]
    [InlineData("192.168.1.20", "192.168.1.20", null)]
    [InlineData("fd00:0::1", "[fd00::1]", null)]
    [InlineData("[fd00::1]:8222", "[fd00::1]", 8222)]
    public void An_allowed_host_is_compared_in_one_normal_form(string entry, string host, int? port)
    {
        Assert.True(ApiAddress.TryParseHost(entry, out var parsedHost, out var parsedPort));
        Assert.Equal((host, port), (parsedHost, parsedPort));
        Assert.True(ApiAddress.IsIpAddress(ApiAddress.NormalizeHost("[::1]")));
        Assert.False(ApiAddress.IsIpAddress(ApiAddress.NormalizeHost("[not-an-address]")));
    }

    [Fact]
    public void Tasks_may_run_at_most_once_a_minute_by_default_and_0_turns_the_minimum_off()
    {
        Assert.Equal(60, Load().Config.MinTaskIntervalSec);
        Assert.Equal(0, Load("""{ "min_task_interval_sec": 0 }""").Config.MinTaskIntervalSec);
        Assert.Equal(300, Load(environment: new() { ["LOOP_MIN_TASK_INTERVAL_SEC"] = "300" }).Config.MinTaskIntervalSec);
        Assert.Contains("min_task_interval_sec", Assert.Throws<ConfigException>(() => Load("""{ "min_task_interval_sec": -1 }""")).Message);
    }

    [Fact]
    public void A_slot_may_fire_a_minute_late_before_it_counts_as_missed_unless_configured()
    {
        Assert.Equal(60, Load().Config.MisfireGraceSec);
        Assert.Equal(5, Load("""{ "misfire_grace_sec": 5 }""").Config.MisfireGraceSec);
        Assert.Equal(0, Load(environment: new() { ["LOOP_MISFIRE_GRACE_SEC"] = "0" }).Config.MisfireGraceSec);
        Assert.Contains("misfire_grace_sec", Assert.Throws<ConfigException>(() => Load("""{ "misfire_grace_sec": -5 }""")).Message);
    }

    [Fact]
    public void A_task_template_that_fires_more_often_than_the_minimum_stops_the_start_saying_which()
    {
        const string templates = """
            { "name": "hourly", "schedule": "0 * * * *", "type": "cron", "prompt": "x" },
            { "name": "eager", "schedule": "*/10 * * * * *", "type": "cron", "prompt": "x" },
            """;

        var error = Assert.Throws<ConfigException>(() => Load($$"""{ "task_templates": [{{templates}}] }"""));

        Assert.Equal($"{_paths.ConfigFile}: task_templates[1] ('eager'): schedule '*/10 * * * * *' fires as often as every 10s; "
            + "a task may run at most once every 60s (min_task_interval_sec)", error.Message);
        Assert.Equal(2, Load($$"""{ "min_task_interval_sec": 5, "task_templates": [{{templates}}] }""").Config.TaskTemplates.Count);
        var interval = Assert.Throws<ConfigException>(() => Load("""{ "task_templates": [{ "name": "fast", "schedule": "30s", "type": "interval", "prompt": "x" }] }"""));
        Assert.EndsWith("task_templates[0] ('fast'): schedule must be at least 60s (min_task_interval_sec); got 30s", interval.Message);
    }

    [Theory]
    [InlineData("""{ "name": "a", "schedule": "61 * * * *", "type": "cron", "prompt": "x" }""", "task_templates[0] ('a'): schedule")]
    [InlineData("""{ "name": "a", "schedule": "1h", "type": "weekly", "prompt": "x" }""", "task_templates[0] ('a'): type must be one of cron, interval, once, loop (found 'weekly')")]
    [InlineData("""{ "name": "a", "schedule": "1h", "type": "interval", "prompt": "x" }, { "name": "A", "schedule": "2h", "type": "interval", "prompt": "y" }""",
        "task_templates[1] ('A'): another template has this name")]
    public void A_task_template_that_could_never_be_added_stops_the_start_saying_which(string templates, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => Load($$"""{ "task_templates": [{{templates}}] }"""));
        Assert.StartsWith($"{_paths.ConfigFile}: {expected}", error.Message);
    }

    [Fact]
    public void Allowed_project_dirs_are_absolute_or_start_with_a_tilde()
    {
        var config = Load("""{ "allowed_project_dirs": ["~", "/srv/www/"] }""").Config;

        Assert.Equal([_temp.Combine("user"), "/srv/www/"], config.AllowedProjectDirs);
        var error = Assert.Throws<ConfigException>(() => Load("""{ "allowed_project_dirs": ["projects"] }"""));
        Assert.Contains("'allowed_project_dirs' entries must be absolute paths or start with ~/", error.Message);
    }

    [Fact]
    public void An_unknown_key_is_a_warning_not_an_error()
    {
        var (config, warnings) = Load("""{ "foo": 1, "log_level": "info" }""");

        Assert.Equal(LogSeverity.Info, config.LogLevel);
        Assert.Equal($"unknown key 'foo' in {_paths.ConfigFile} (ignored)", Assert.Single(warnings));
    }

    [Fact]
    public void Loop_variables_override_the_file()
    {
        var (config, _) = Load(
            """{ "api_addr": "127.0.0.1:9000", "runner": "docker", "container_timeout_sec": 10, "claude_model": "file-model" }""",
            new()
            {
                ["LOOP_API_ADDR"] = "0.0.0.0:9999",
                ["LOOP_RUNNER"] = "process",
                ["LOOP_CONTAINER_TIMEOUT_SEC"] = "600",
                ["LOOP_MAX_CONCURRENT_CONTAINERS"] = "8",
                ["LOOP_CLAUDE_MODEL"] = "env-model",
                ["LOOP_DB_PATH"] = "/var/lib/loop/loop.db",
                ["LOOP_CONTAINER_IMAGE"] = "my-agent:2",
                ["LOOP_CONTAINER_CPUS"] = "0.5",
            });

        Assert.Equal("0.0.0.0:9999", config.ApiAddr);
        Assert.Equal(RunnerKind.Process, config.Runner);
        Assert.Equal(600, config.ContainerTimeoutSec);
        Assert.Equal(8, config.MaxConcurrentContainers);
        Assert.Equal("env-model", config.ClaudeModel);
        Assert.Equal("/var/lib/loop/loop.db", config.DbPath);
        Assert.Equal("my-agent:2", config.ContainerImage);
        Assert.Equal(0.5, config.ContainerCpus);
    }

    [Fact]
    public void Every_scalar_key_has_a_loop_variable()
    {
        var (config, _) = Load(environment: new()
        {
            ["LOOP_DISCORD_TOKEN"] = "t",
            ["LOOP_DISCORD_APP_ID"] = "1",
            ["LOOP_DISCORD_GUILD_ID"] = "2",
            ["LOOP_LOG_LEVEL"] = "error",
            ["LOOP_LOG_FORMAT"] = "json",
            ["LOOP_CONTAINER_MEMORY_MB"] = "1024",
            ["LOOP_CLAUDE_BIN_PATH"] = "/usr/bin/claude",
            ["LOOP_CONTAINER_PIDS_LIMIT"] = "64",
            ["LOOP_ANTHROPIC_API_KEY"] = "k",
            ["LOOP_CLAUDE_CODE_OAUTH_TOKEN"] = "o",
            ["LOOP_DISCORD_API_URL"] = "http://127.0.0.1:1/api",
            ["LOOP_DISCORD_GATEWAY_URL"] = "ws://127.0.0.1:1/gw",
        });

        Assert.Equal(("t", "1", "2"), (config.DiscordToken, config.DiscordAppId, config.DiscordGuildId));
        Assert.Equal((LogSeverity.Error, LogFormat.Json), (config.LogLevel, config.LogFormat));
        Assert.Equal((1024, 64), (config.ContainerMemoryMb, config.ContainerPidsLimit));
        Assert.Equal("/usr/bin/claude", config.ClaudeBinPath);
        Assert.Equal(("k", "o"), (config.AnthropicApiKey, config.ClaudeCodeOauthToken));
        Assert.Equal(("http://127.0.0.1:1/api", "ws://127.0.0.1:1/gw"), (config.DiscordApiUrl, config.DiscordGatewayUrl));
    }

    [Theory]
    [InlineData("LOOP_CONTAINER_TIMEOUT_SEC", "abc", "LOOP_CONTAINER_TIMEOUT_SEC=300")]
    [InlineData("LOOP_CONTAINER_CPUS", "lots", "LOOP_CONTAINER_CPUS=1.0")]
    [InlineData("LOOP_RUNNER", "podman", "LOOP_RUNNER=docker")]
    [InlineData("LOOP_API_ADDR", "8222", "LOOP_API_ADDR=127.0.0.1:8222")]
    [InlineData("LOOP_MAX_CONCURRENT_CONTAINERS", "0", "LOOP_MAX_CONCURRENT_CONTAINERS=3")]
    [InlineData("LOOP_CONTAINER_USER", "0:0", "LOOP_CONTAINER_USER=1000:1000")]
    public void A_bad_variable_names_the_variable_and_a_valid_value(string variable, string value, string example)
    {
        var error = Assert.Throws<ConfigException>(() => Load(environment: new() { [variable] = value }));

        Assert.StartsWith($"environment variable {variable}", error.Message);
        Assert.Contains(example, error.Message);
        Assert.Contains(value, error.Message);
    }

    [Theory]
    [InlineData("""{ "runner": "podman" }""", "\"runner\": \"docker\"")]
    [InlineData("""{ "container_memory_mb": -5 }""", "\"container_memory_mb\": 512")]
    [InlineData("""{ "container_cpus": 0 }""", "\"container_cpus\": 1")]
    [InlineData("""{ "api_addr": "localhost" }""", "\"api_addr\": \"127.0.0.1:8222\"")]
    [InlineData("""{ "api_addr": "localhost:99999" }""", "\"api_addr\": \"127.0.0.1:8222\"")]
    [InlineData("""{ "log_format": "xml" }""", "\"log_format\": \"text\"")]
    [InlineData("""{ "container_user": "root" }""", "\"container_user\": \"1000:1000\"")]
    [InlineData("""{ "container_user": "0:1000" }""", "\"container_user\": \"1000:1000\"")]
    [InlineData("""{ "container_user": "1000:0" }""", "\"container_user\": \"1000:1000\"")]
    [InlineData("""{ "container_user": "1000" }""", "\"container_user\": \"1000:1000\"")]
    [InlineData("""{ "container_user": 1000 }""", "\"container_user\": \"1000:1000\"")]
    public void An_invalid_value_in_the_file_says_what_to_write_instead(string json, string example)
    {
        var error = Assert.Throws<ConfigException>(() => Load(json));

        Assert.StartsWith($"{_paths.ConfigFile}: '", error.Message);
        Assert.Contains(example, error.Message);
    }

    [Fact]
    public void Container_user_is_read_from_the_file_or_its_variable_and_defaults_to_unset()
    {
        Assert.Null(Load().Config.ContainerUser);
        Assert.Equal("1000:1000", Load("""{ "container_user": "1000:1000" }""").Config.ContainerUser);
        Assert.Null(Load("""{ "container_user": null }""").Config.ContainerUser);
        Assert.Equal("2000:3000", Load("""{ "container_user": "1000:1000" }""", new() { ["LOOP_CONTAINER_USER"] = "2000:3000" }).Config.ContainerUser);
    }

    [Theory]
    [InlineData("[::1]:8222")]
    [InlineData("localhost:80")]
    [InlineData("LocalHost:80")]
    [InlineData("0.0.0.0:8222")]
    [InlineData("*:8222")]
    public void Api_addr_accepts_host_and_port(string address)
    {
        Assert.Equal(address, Load($$"""{ "api_addr": "{{address}}" }""").Config.ApiAddr);
    }

    [Theory]
    [InlineData("127.0.0.1:8222", "127.0.0.1", 8222)]
    [InlineData("192.168.1.20:80", "192.168.1.20", 80)]
    [InlineData("localhost:8222", "127.0.0.1", 8222)]
    [InlineData("LOCALHOST:8222", "127.0.0.1", 8222)]
    [InlineData("0.0.0.0:8222", "0.0.0.0", 8222)]
    [InlineData("*:9000", "0.0.0.0", 9000)]
    [InlineData("[::1]:8222", "::1", 8222)]
    [InlineData("[::]:65535", "::", 65535)]
    public void Api_addr_is_read_into_the_endpoint_the_daemon_listens_on(string text, string address, int port)
    {
        Assert.True(ApiAddress.TryParse(text, out var endpoint, out var problem), problem);
        Assert.Equal(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(address), port), endpoint);
        Assert.Equal(endpoint, ApiAddress.Parse(text));
    }

    [Theory]
    [InlineData("", "must be host:port with a port from 1 to 65535")]
    [InlineData("localhost", "must be host:port with a port from 1 to 65535")]
    [InlineData("127.0.0.1:0", "must be host:port with a port from 1 to 65535")]
    [InlineData("127.0.0.1:65536", "must be host:port with a port from 1 to 65535")]
    [InlineData("::1:8222", "must be host:port with a port from 1 to 65535")]
    [InlineData("myhost:8222", "must be an IP address or localhost, not the host name 'myhost'")]
    [InlineData("loop.example.com:8222", "must be an IP address or localhost, not the host name 'loop.example.com'")]
    [InlineData("8222:8222", "must be an IP address or localhost, not the host name '8222'")]
    public void Api_addr_that_is_not_an_address_and_port_says_why(string text, string problem)
    {
        Assert.False(ApiAddress.TryParse(text, out _, out var said));
        Assert.StartsWith(problem, said);
        Assert.StartsWith($"api_addr '{text}' {problem}", Assert.Throws<FormatException>(() => ApiAddress.Parse(text)).Message);
    }

    [Fact]
    public void A_host_name_in_api_addr_is_refused_when_the_config_loads_not_when_the_daemon_binds()
    {
        var error = Assert.Throws<ConfigException>(() => Load("""{ "api_addr": "myhost:8222" }"""));

        Assert.Equal($"{_paths.ConfigFile}: 'api_addr' must be an IP address or localhost, not the host name 'myhost' (Loop does not look names up): "
            + "listen on the machine's address, or on every interface with 0.0.0.0:8222, and list the name in allowed_hosts, "
            + "e.g. \"api_addr\": \"127.0.0.1:8222\" (found \"myhost:8222\")", error.Message);
        var variable = Assert.Throws<ConfigException>(() => Load("{}", new() { ["LOOP_API_ADDR"] = "myhost:8222" }));
        Assert.StartsWith("environment variable LOOP_API_ADDR must be an IP address or localhost, not the host name 'myhost'", variable.Message);
    }

    [Theory]
    [InlineData("trace", LogSeverity.Trace)]
    [InlineData("DEBUG", LogSeverity.Debug)]
    [InlineData("Info", LogSeverity.Info)]
    [InlineData("warn", LogSeverity.Warn)]
    [InlineData("warning", LogSeverity.Warn)]
    [InlineData(" error ", LogSeverity.Error)]
    [InlineData("CRITICAL", LogSeverity.Critical)]
    public void Log_level_is_read_in_any_case_from_the_file_and_its_variable(string text, LogSeverity level)
    {
        Assert.Equal(level, Load($$"""{ "log_level": "{{text}}" }""").Config.LogLevel);
        Assert.Equal(level, Load("{}", new() { ["LOOP_LOG_LEVEL"] = text }).Config.LogLevel);
    }

    [Theory]
    [InlineData("text", LogFormat.Text)]
    [InlineData("JSON", LogFormat.Json)]
    [InlineData("Json", LogFormat.Json)]
    public void Log_format_is_read_in_any_case_from_the_file_and_its_variable(string text, LogFormat format)
    {
        Assert.Equal(format, Load($$"""{ "log_format": "{{text}}" }""").Config.LogFormat);
        Assert.Equal(format, Load("{}", new() { ["LOOP_LOG_FORMAT"] = text }).Config.LogFormat);
    }

    [Fact]
    public void A_log_level_or_format_that_is_not_one_of_the_words_lists_them()
    {
        Assert.Equal($"{_paths.ConfigFile}: 'log_level' must be one of trace, debug, info, warn, error, critical, e.g. \"log_level\": \"info\" (found the string \"verbose\")",
            Assert.Throws<ConfigException>(() => Load("""{ "log_level": "verbose" }""")).Message);
        Assert.Equal("environment variable LOOP_LOG_FORMAT must be \"text\" or \"json\", e.g. LOOP_LOG_FORMAT=text (found \"xml\")",
            Assert.Throws<ConfigException>(() => Load("{}", new() { ["LOOP_LOG_FORMAT"] = "xml" })).Message);
        Assert.Contains("'log_level' must be one of", Assert.Throws<ConfigException>(() => Load("""{ "log_level": 3 }""")).Message);
    }

    [Fact]
    public void Poll_interval_sec_is_accepted_and_ignored_with_a_notice()
    {
        var (config, warnings) = Load("""{ "poll_interval_sec": 30 }""");

        Assert.Empty(warnings);
        Assert.Equal(LoopConfig.Defaults(_paths).ToString(), config.ToString());
        var notice = Assert.Single(Load("""{ "poll_interval_sec": "anything" }""").Notices);
        Assert.Equal($"{_paths.ConfigFile}: 'poll_interval_sec' is ignored (Loop's scheduler runs on timers, not polling); the setting can be removed", notice);
        Assert.StartsWith("environment variable LOOP_POLL_INTERVAL_SEC: 'poll_interval_sec' is ignored",
            Assert.Single(Load("{}", new() { ["LOOP_POLL_INTERVAL_SEC"] = "5" }).Notices));
        Assert.Empty(Load("{}").Notices);
    }

    [Fact]
    public void Paths_in_the_config_expand_the_home_and_relative_db_path_is_inside_the_loop_home()
    {
        Assert.Equal(_temp.Combine("user", "data", "x.db"), Load("""{ "db_path": "~/data/x.db" }""").Config.DbPath);
        Assert.Equal(_temp.Combine("loop-home", "state", "x.db"), Load("""{ "db_path": "state/x.db" }""").Config.DbPath);
    }

    [Fact]
    public void Loop_home_relocates_every_file()
    {
        var environment = new Hashtable { ["LOOP_HOME"] = _temp.Combine("elsewhere"), ["HOME"] = _temp.Combine("user") };
        var paths = LoopPaths.FromEnvironment(environment);
        _temp.Write("elsewhere/config.json", """{ "log_level": "warn" }""");

        var config = ConfigLoader.Load(paths, environment).Config;

        var home = _temp.Combine("elsewhere");
        Assert.Equal(home, paths.Home);
        Assert.Equal(LogSeverity.Warn, config.LogLevel);
        Assert.Equal(Path.Combine(home, "loop.db"), config.DbPath);
        Assert.Equal(Path.Combine(home, "config.json"), paths.ConfigFile);
        Assert.Equal(Path.Combine(home, "container"), paths.ContainerDir);
        Assert.Equal(Path.Combine(home, "run"), paths.RunDir);
        Assert.Equal(Path.Combine(home, "c42", "work"), paths.ChannelWorkDir("c42"));
        Assert.Equal(Path.Combine(home, "run", "agent", "loop.sock"), paths.DaemonSocket);
        Assert.Equal(Path.Combine(home, "run", "runs", "run_1"), paths.RunFilesDir("run_1"));
    }

    [Fact]
    public void Without_loop_home_the_home_is_dot_loop_in_the_user_home()
    {
        var paths = LoopPaths.FromEnvironment(new Hashtable { ["HOME"] = "/home/ann" });

        Assert.Equal("/home/ann/.loop", paths.Home);
        Assert.Equal("/home/ann/.loop/config.json", paths.ConfigFile);
        Assert.Equal("/home/ann", paths.ExpandHome("~"));
        Assert.Equal("/home/ann/.ssh", paths.ExpandHome("~/.ssh"));
        Assert.Equal("/etc/hosts", paths.ExpandHome("/etc/hosts"));
        Assert.Equal("~other/x", paths.ExpandHome("~other/x"));
    }

    [Fact]
    public void A_channel_id_cannot_climb_out_of_the_loop_home()
    {
        Assert.Throws<ArgumentException>(() => _paths.ChannelWorkDir("../etc"));
        Assert.Throws<ArgumentException>(() => _paths.RunFilesDir(".."));
    }

    [Fact]
    public void Secrets_come_from_claude_variables_when_the_config_does_not_set_them()
    {
        var config = Load(environment: new() { ["ANTHROPIC_API_KEY"] = "sk-ant-env", ["CLAUDE_CODE_OAUTH_TOKEN"] = "oauth-env" }).Config;

        Assert.Equal("sk-ant-env", config.AnthropicApiKey);
        Assert.Equal("oauth-env", config.ClaudeCodeOauthToken);
    }

    [Fact]
    public void Secrets_set_by_the_file_or_a_loop_variable_win_over_claude_variables()
    {
        var config = Load(
            """{ "anthropic_api_key": "sk-ant-file" }""",
            new() { ["ANTHROPIC_API_KEY"] = "sk-ant-env", ["LOOP_CLAUDE_CODE_OAUTH_TOKEN"] = "oauth-loop", ["CLAUDE_CODE_OAUTH_TOKEN"] = "oauth-env" }).Config;

        Assert.Equal("sk-ant-file", config.AnthropicApiKey);
        Assert.Equal("oauth-loop", config.ClaudeCodeOauthToken);
    }

    [Fact]
    public void ToString_never_shows_secrets()
    {
        var config = Load(
            """
            {
              "discord_token": "discord-secret-value",
              "mcp": { "servers": { "db": { "command": "npx", "env": { "DATABASE_URL": "postgresql://u:pw-secret@h/db" } } } }
            }
            """,
            new() { ["ANTHROPIC_API_KEY"] = "sk-ant-secret-value", ["CLAUDE_CODE_OAUTH_TOKEN"] = "oauth-secret-value" }).Config;

        var text = config.ToString();

        Assert.DoesNotContain("discord-secret-value", text);
        Assert.DoesNotContain("sk-ant-secret-value", text);
        Assert.DoesNotContain("oauth-secret-value", text);
        Assert.DoesNotContain("pw-secret", text);
        Assert.Contains("discord_token = ***", text);
        Assert.Contains("anthropic_api_key = ***", text);
        Assert.Contains("claude_code_oauth_token = ***", text);
        Assert.Contains("api_addr = 127.0.0.1:8222", text);
        Assert.Contains("DATABASE_URL", text);
    }

    [Fact]
    public void An_empty_file_gives_the_defaults()
    {
        var (config, warnings) = Load("  \n");

        Assert.Empty(warnings);
        Assert.Equal(300, config.ContainerTimeoutSec);
    }

    [Fact]
    public void A_file_that_is_not_an_object_is_refused()
    {
        var error = Assert.Throws<ConfigException>(() => Load("""["log_level"]"""));

        Assert.Contains("must hold one JSON object", error.Message);
    }

    [Fact]
    public void Connector_keys_declare_one_connector_per_kind_checked_as_the_api_checks_them()
    {
        var config = Load("""
            {
              "discord_token": "abc", "discord_app_id": 42,
              "telegram_allowed_users": ["123", "@Alice"],
              "email_imap": "imap.example.com:993", "email_smtp": "smtp.example.com:587", "email_username": "loop",
              "email_password": "secret", "email_address": "loop@example.com", "email_tls": "TLS"
            }
            """, new() { ["LOOP_TELEGRAM_TOKEN"] = "123:abc" }).Config;

        Assert.Equal(["discord", "telegram", "email"], config.Connectors.Select(c => c.Id));
        var discord = config.Connectors[0].Values;
        Assert.Equal("abc", discord.Secrets["token"]);
        Assert.Equal("42", discord.Settings["app_id"]);
        var telegram = config.Connectors[1].Values;
        Assert.Equal("123:abc", telegram.Secrets["token"]);
        Assert.Equal(["123", "@alice"], telegram.Allowed);
        var email = config.Connectors[2].Values;
        Assert.Equal("tls", email.Settings["tls"]);
        Assert.False(email.Settings.ContainsKey("password"));
        Assert.DoesNotContain("secret", config.ToString(), StringComparison.Ordinal);
        Assert.Contains("connectors = [discord, telegram, email]", config.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_connector_missing_a_setting_or_given_a_malformed_one_is_refused_naming_the_key()
    {
        var missing = Assert.Throws<ConfigException>(() => Load("""{ "telegram_allowed_users": ["123"] }"""));
        Assert.Contains("'telegram_token': token is required for a telegram connector", missing.Message);

        var malformed = Assert.Throws<ConfigException>(() => Load("""
            { "email_imap": "imap.example.com", "email_smtp": "smtp:25", "email_username": "u", "email_password": "p", "email_address": "a@b.c" }
            """));
        Assert.Contains("'email_imap': imap must be host:port, e.g. \"imap.example.com:993\" (found \"imap.example.com\")", malformed.Message);

        var whitelist = Assert.Throws<ConfigException>(() => Load("{}", new()
        {
            ["LOOP_WHATSAPP_PHONE_NUMBER_ID"] = "106540352242922",
            ["LOOP_WHATSAPP_ACCESS_TOKEN"] = "token",
            ["LOOP_WHATSAPP_APP_SECRET"] = "secret",
            ["LOOP_WHATSAPP_VERIFY_TOKEN"] = "verify",
            ["LOOP_WHATSAPP_ALLOWED_NUMBERS"] = "+1 555 123 4567, nonsense",
        }));
        Assert.StartsWith("environment variable LOOP_WHATSAPP_ALLOWED_NUMBERS: 'whatsapp_allowed_numbers': allowed_numbers entries must be like", whitelist.Message);
    }

    [Fact]
    public void A_connector_may_run_its_chats_in_direct_mode_with_a_model_of_its_own()
    {
        var (config, warnings) = Load("""
            {
              "discord_token": "t", "discord_mode": "direct", "discord_model": "claude-haiku-4-5", "discord_progress": "Verbose",
              "telegram_token": "123:abc", "telegram_mode": "DIRECT", "telegram_model": "claude-sonnet-4-5", "telegram_progress": "off",
              "email_imap": "imap.example.com:993", "email_smtp": "smtp.example.com:587", "email_username": "loop@example.com",
              "email_password": "p", "email_address": "loop@example.com"
            }
            """);

        Assert.Empty(warnings);
        var discord = config.Connectors.Single(c => c.Id == "discord").Values.Settings;
        Assert.Equal(("direct", "claude-haiku-4-5", "verbose"), (discord["mode"], discord["model"], discord["progress"]));
        var telegram = config.Connectors.Single(c => c.Id == "telegram").Values.Settings;
        Assert.Equal(("direct", "claude-sonnet-4-5", "off"), (telegram["mode"], telegram["model"], telegram["progress"]));

        var mode = Assert.Throws<ConfigException>(() => Load("""{ "telegram_token": "123:abc", "telegram_mode": "api" }"""));
        Assert.Contains("'telegram_mode': mode must be one of container, direct, e.g. \"container\" (found \"api\")", mode.Message);
        var model = Assert.Throws<ConfigException>(() => Load("""{ "discord_token": "t", "discord_model": "--help" }"""));
        Assert.Contains("'discord_model': model must be a model name or alias", model.Message);
        var progress = Assert.Throws<ConfigException>(() => Load("""{ "discord_token": "t", "discord_progress": "loud" }"""));
        Assert.Contains("'discord_progress': progress must be one of off, tools, verbose", progress.Message);
        // Mail cannot be edited in place: an email connector has no progress to show.
        var (_, mail) = Load("""
            { "email_imap": "imap.example.com:993", "email_smtp": "smtp.example.com:587", "email_username": "loop@example.com",
              "email_password": "p", "email_address": "loop@example.com", "email_progress": "tools" }
            """);
        Assert.Equal($"unknown key 'email_progress' in {_paths.ConfigFile} (ignored)", Assert.Single(mail));
    }

    [Fact]
    public void The_anthropic_base_url_comes_from_the_file_or_the_sdks_variable_and_must_be_a_url()
    {
        Assert.Null(Load().Config.AnthropicBaseUrl);
        Assert.Equal("http://127.0.0.1:9100", Load("""{ "anthropic_base_url": "http://127.0.0.1:9100" }""").Config.AnthropicBaseUrl);
        Assert.Equal("https://proxy.example.com", Load("{}", new() { ["ANTHROPIC_BASE_URL"] = "https://proxy.example.com" }).Config.AnthropicBaseUrl);

        var file = Assert.Throws<ConfigException>(() => Load("""{ "anthropic_base_url": "api.anthropic.com" }"""));
        Assert.Contains("'anthropic_base_url' must be an absolute http(s) URL", file.Message);
        var variable = Assert.Throws<ConfigException>(() => Load("{}", new() { ["ANTHROPIC_BASE_URL"] = "ftp://x" }));
        Assert.StartsWith("environment variable ANTHROPIC_BASE_URL must be an absolute http(s) URL", variable.Message);
    }
}
