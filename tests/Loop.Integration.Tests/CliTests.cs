namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Diagnostics;
using System.Text.Json.Nodes;

/// <summary>The `loop` command line, run as a user runs it.</summary>
public sealed class CliTests
{
    private static Task<(int ExitCode, string Output)> LoopAsync(Dictionary<string, string> environment, params string[] args) =>
        LoopCli.RunAsync(environment, args);

    [Fact]
    public async Task A_config_syntax_error_names_file_line_and_column_and_exits_1()
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        var config = Path.Combine(home, "config.json");
        await File.WriteAllTextAsync(config, "{\n  // comment\n  \"container_cpus\": 1.5,\n  \"api_addr\" \"127.0.0.1:1\"\n}\n");

        var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home }, "serve");

        Assert.Equal(1, exit);
        Assert.Contains($"{config}:4:", output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task A_bad_environment_override_is_refused_with_the_variable_named()
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home, ["LOOP_CONTAINER_TIMEOUT_SEC"] = "soon" }, "serve");
        Assert.Equal(1, exit);
        Assert.Contains("LOOP_CONTAINER_TIMEOUT_SEC", output);
    }

    [Fact]
    public async Task A_postgres_store_that_cannot_be_reached_stops_serve_saying_which_server()
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        await File.WriteAllTextAsync(Path.Combine(home, "silo.json"),
            """{ "store": { "kind": "postgres", "connection_string": "Host=127.0.0.1;Port=1;Database=loop;Password=pg-secret" } }""");

        var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home }, "serve");

        Assert.Equal(1, exit);
        Assert.Contains("loop: cannot start: PostgreSQL 127.0.0.1:1/loop cannot be reached", output);
        Assert.DoesNotContain("pg-secret", output);
        Assert.DoesNotContain("   at ", output); // no stack trace
        Assert.False(File.Exists(Path.Combine(home, "loop.db")));
    }

    [Fact]
    public async Task An_api_address_another_program_listens_on_stops_serve_before_the_node_starts()
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        using var other = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        other.Start();
        var port = ((System.Net.IPEndPoint)other.LocalEndpoint).Port;
        await File.WriteAllTextAsync(Path.Combine(home, "config.json"), $$"""{ "api_addr": "127.0.0.1:{{port}}" }""");

        var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home }, "serve");

        Assert.Equal(1, exit);
        Assert.Contains($"loop: cannot start: Failed to bind to address http://127.0.0.1:{port}: address already in use", output);
        Assert.DoesNotContain("   at ", output);
        // Said before the node started anything: no silo, no tasks armed, no connector.
        Assert.DoesNotContain("Armed", output);
    }

    [Fact]
    public async Task A_silo_file_named_on_the_command_line_that_is_not_there_stops_serve_and_migrate_with_its_path()
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        var missing = Path.Combine(home, "no-such-silo.json");

        foreach (var command in new[] { "serve", "migrate" })
        {
            var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home }, command, "--silo", missing);

            Assert.Equal(1, exit);
            Assert.Equal($"loop: {missing}: no such file (given with --silo)", output.Trim());
        }
        Assert.False(File.Exists(Path.Combine(home, "loop.db")), "nothing may start on defaults instead");
    }

    [Fact]
    public async Task A_host_name_in_api_addr_stops_serve_before_anything_starts_saying_what_to_write()
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        var config = Path.Combine(home, "config.json");
        await File.WriteAllTextAsync(config, """{ "api_addr": "myhost:8222" }""");

        var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home }, "serve");

        Assert.Equal(1, exit);
        Assert.StartsWith($"loop: {config}: 'api_addr' must be an IP address or localhost, not the host name 'myhost'", output);
        Assert.Contains("0.0.0.0:8222", output);
        Assert.Contains("allowed_hosts", output);
        Assert.False(File.Exists(Path.Combine(home, "loop.db")), "nothing may start on a config that cannot listen");
    }

    [Fact]
    public async Task Log_level_and_log_format_are_read_in_any_case_DEBUG_gives_debug_lines_and_JSON_json_lines()
    {
        // A claude that fails: a failed run's error is logged at debug level.
        await using var loop = await LoopDaemon.StartAsync(new JsonObject
        {
            ["runner"] = "process",
            ["claude_bin_path"] = "/bin/false",
            ["log_level"] = "DEBUG",
            ["log_format"] = "JSON",
        });
        var id = (string)(await loop.CreateChannelAsync(Directory.CreateTempSubdirectory("loop-proj-").FullName))["id"]!;
        await loop.PostMessageAsync(id, "hello");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("failed", (string)run["status"]!);

        var runId = (string)run["id"]!;
        await loop.WaitForOutputAsync(new System.Text.RegularExpressions.Regex($"\"Run {runId} for channel {id} ended failed: "));
        var lines = loop.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var entries = lines.Select(line => JsonNode.Parse(line)!.AsObject()).ToList();
        Assert.Contains(entries, e => (string)e["LogLevel"]! == "Debug" && ((string)e["Message"]!).StartsWith($"Run {runId} for channel {id} ended failed: ", StringComparison.Ordinal));
        Assert.Contains(entries, e => (string)e["LogLevel"]! == "Information" && ((string)e["Message"]!).StartsWith("Listening on http://", StringComparison.Ordinal));
        // The first line says which home and config it uses; each names its component in a word.
        Assert.Equal($"Loop home {loop.Home}; config {Path.Combine(loop.Home, "config.json")}", (string)entries[0]["Message"]!);
        Assert.Contains(entries, e => (string)e["Component"]! == "node-lifecycle" && ((string)e["Message"]!).Contains(" started: store ", StringComparison.Ordinal));
        Assert.All(entries, e => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", (string)e["Timestamp"]!));
        Assert.DoesNotContain(entries, e => ((string)e["Component"]!).Contains('.', StringComparison.Ordinal));
    }

    [Fact]
    public async Task Text_log_lines_give_the_time_the_level_and_the_component_in_a_word()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["runner"] = "process", ["log_level"] = "info" });
        var lines = loop.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info loop: Loop home ", lines[0]);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\S+ info node-lifecycle: Loop \S+ node \S+ started: store "));
        Assert.DoesNotContain(lines, l => l.Contains("Loop.Runtime.", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("log_level", "verbose", "must be one of trace, debug, info, warn, error, critical")]
    [InlineData("log_format", "xml", "must be \"text\" or \"json\"")]
    public async Task An_unknown_log_level_or_format_stops_serve_naming_the_words_it_takes(string key, string value, string problem)
    {
        var home = Directory.CreateTempSubdirectory("loop-cli-").FullName;
        var config = Path.Combine(home, "config.json");
        await File.WriteAllTextAsync(config, $$"""{ "{{key}}": "{{value}}" }""");

        var (exit, output) = await LoopAsync(new() { ["LOOP_HOME"] = home }, "serve");

        Assert.Equal(1, exit);
        Assert.StartsWith($"loop: {config}: '{key}' {problem}", output);
        Assert.Contains($"(found the string \"{value}\")", output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task The_cli_reads_the_local_token_from_the_loop_home_the_daemon_uses_even_one_written_with_a_tilde()
    {
        var user = Directory.CreateTempSubdirectory("loop-user-").FullName;
        var home = Directory.CreateDirectory(Path.Combine(user, "loop-home")).FullName;
        // As a service manager passes it: not expanded by a shell.
        var environment = new Dictionary<string, string?> { ["HOME"] = user, ["LOOP_HOME"] = "~/loop-home" };
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["runner"] = "process" }, environment, home);

        var (exit, output) = await LoopAsync(
            new() { ["HOME"] = user, ["LOOP_HOME"] = "~/loop-home", ["LOOP_API_TOKEN"] = "", ["LOOP_CHANNEL_TOKEN"] = "" },
            "tasks", "list", "--api-url", loop.ApiUrl);

        Assert.True(exit == 0, output);
        Assert.Contains("no tasks", output);
    }

    [Fact]
    public async Task Bad_usage_exits_2_and_help_exits_0()
    {
        var (exit, output) = await LoopAsync([], "no-such-command");
        Assert.Equal(2, exit);
        Assert.Contains("no-such-command", output);

        (exit, output) = await LoopAsync([], "--help");
        Assert.Equal(0, exit);
        Assert.Contains("serve", output);
    }

    [Fact]
    public async Task The_process_runner_runs_the_agent_on_the_host_and_says_it_gives_no_isolation()
    {
        var fakeHome = Directory.CreateTempSubdirectory("loop-home-").FullName;
        await using var loop = await LoopDaemon.StartAsync(
            new JsonObject { ["runner"] = "process", ["claude_bin_path"] = Path.Combine(AppContext.BaseDirectory, "claude") },
            new Dictionary<string, string?> { ["HOME"] = fakeHome, ["ANTHROPIC_API_KEY"] = "sk-process-runner-test" });
        var health = await loop.GetObjectAsync("/api/health");
        Assert.Equal("process", (string)health["runner"]!);
        Assert.Contains(health["warnings"]!.AsArray(), w => ((string)w!).Contains("no isolation"));

        var project = Directory.CreateTempSubdirectory("loop-proj-").FullName;
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        await loop.PostMessageAsync(id, "[[pwd]] [[env ANTHROPIC_API_KEY]]");
        await loop.PostMessageAsync(id, "[[session]]");
        var runs = await loop.WaitForFinishedRunsAsync(id, 1);
        Assert.Equal("succeeded", (string)runs[0]["status"]!);
        Assert.Contains($"pwd: {project}", (string)runs[0]["reply"]!);
        Assert.Contains("env ANTHROPIC_API_KEY is set", (string)runs[0]["reply"]!);
    }
}
