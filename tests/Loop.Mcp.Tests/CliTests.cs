namespace Loop.Mcp.Tests;

using Loop.Testing;

using System.Text.Json;
using Loop.Client;

/// <summary><c>loop tasks ...</c> and <c>loop mcp</c> usage, run as processes as a user would.</summary>
[Collection(DaemonCollection.Name)]
public sealed class TasksCliTests(DaemonFixture fixture)
{
    private LoopDaemon Loop => fixture.Daemon;

    private Task<CliResult> Tasks(params string[] args) => LoopCli.RunAsync(["tasks", .. args, "--api-url", Loop.ApiUrl]);

    [Fact]
    public async Task Add_list_show_toggle_runs_and_remove_a_task_from_the_terminal()
    {
        var channel = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-cli-"));

        // The type in any case, as people type it.
        var add = await Tasks("add", "--channel-id", channel.Id, "--type", "CRON", "--schedule", "*/5 * * * *",
            "--prompt", "Check the deploys", "--timezone", "Europe/Berlin", "--name", "deploy-watch");
        Assert.Equal(0, add.ExitCode);
        Assert.StartsWith("added task_", add.Stdout);
        Assert.Contains("cron \"*/5 * * * *\" (Europe/Berlin)", add.Stdout);
        var task = Assert.Single(await Loop.Api.ListTasksAsync(channel.Id));
        Assert.Equal(("deploy-watch", "cron", "*/5 * * * *", "Europe/Berlin", "Check the deploys"), (task.Name, task.Type, task.Schedule, task.Timezone, task.Prompt));

        var list = await Tasks("list", "--channel-id", channel.Id);
        Assert.Equal(0, list.ExitCode);
        var lines = list.Stdout.TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("ID", lines[0]);
        Assert.Contains("NEXT RUN", lines[0]);
        Assert.StartsWith(task.Id, lines[1]);
        Assert.Contains("deploy-watch", lines[1]);
        Assert.Contains("yes", lines[1]);

        var json = await Tasks("list", "--channel-id", channel.Id, "--json");
        Assert.Equal(0, json.ExitCode);
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            Assert.Equal(task.Id, doc.RootElement.EnumerateArray().Single().GetProperty("id").GetString());
        }

        var show = await Tasks("show", task.Id);
        Assert.Equal(0, show.ExitCode);
        Assert.Contains($"id:             {task.Id}", show.Stdout);
        Assert.Contains("prompt:         Check the deploys", show.Stdout);

        var toggle = await Tasks("toggle", task.Id);
        Assert.Equal((0, $"{task.Id} disabled"), (toggle.ExitCode, toggle.Stdout.Trim()));
        Assert.False((await Loop.Api.GetTaskAsync(task.Id)).Enabled);
        toggle = await Tasks("toggle", task.Id);
        Assert.Equal((0, $"{task.Id} enabled"), (toggle.ExitCode, toggle.Stdout.Trim()));

        var runs = await Tasks("runs", task.Id);
        Assert.Equal((0, "no runs yet"), (runs.ExitCode, runs.Stdout.Trim()));

        var remove = await Tasks("rm", task.Id);
        Assert.Equal((0, $"removed {task.Id}"), (remove.ExitCode, remove.Stdout.Trim()));
        Assert.Empty(await Loop.Api.ListTasksAsync(channel.Id));
        Assert.Equal("no tasks", (await Tasks("list", "--channel-id", channel.Id)).Stdout.Trim());
    }

    [Fact]
    public async Task API_errors_print_one_line_and_exit_1()
    {
        var channel = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-cli-"));

        var badCron = await Tasks("add", "--channel-id", channel.Id, "--type", "cron", "--schedule", "61 * * * *", "--prompt", "x");
        Assert.Equal(1, badCron.ExitCode);
        var line = Assert.Single(badCron.Stderr.TrimEnd().Split('\n'));
        Assert.StartsWith("loop: ", line);
        var apiError = await Assert.ThrowsAsync<LoopApiException>(() =>
            Loop.Api.CreateTaskAsync(new CreateTaskRequest(channel.Id, "cron", "61 * * * *", "x")));
        Assert.Equal($"loop: {apiError.Message}", line);
        Assert.Empty(badCron.Stdout);

        var unknown = await Tasks("show", "task_nope");
        Assert.Equal(1, unknown.ExitCode);
        Assert.StartsWith("loop: ", Assert.Single(unknown.Stderr.TrimEnd().Split('\n')));

        Assert.Equal(1, (await Tasks("rm", "task_nope")).ExitCode);
        Assert.Equal(1, (await Tasks("add", "--channel-id", "ch_nope", "--type", "interval", "--schedule", "5m", "--prompt", "x")).ExitCode);
    }

    [Fact]
    public async Task Edit_start_and_stop_a_loop_task_with_its_misfire_and_completion_promise()
    {
        var channel = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-cli-"));
        var add = await Tasks("add", "--channel-id", channel.Id, "--type", "loop", "--prompt", "[[sleep 60]] [[reply still working]]",
            "--name", "grind", "--max-iterations", "3", "--completion-promise", "SHIPPED", "--misfire", "SKIP", "--disabled");
        Assert.True(add.ExitCode == 0, add.ToString());
        var task = Assert.Single(await Loop.Api.ListTasksAsync(channel.Id));
        Assert.Equal(("SHIPPED", "skip", 3), (task.CompletionPromise, task.Misfire, task.MaxIterations));

        var edit = await Tasks("edit", task.Id, "--name", "grind-harder", "--context", "channel", "--misfire", "run_once", "--completion-promise", "DONE");
        Assert.True(edit.ExitCode == 0, edit.ToString());
        Assert.StartsWith($"updated {task.Id} \"grind-harder\"", edit.Stdout);
        var edited = await Loop.Api.GetTaskAsync(task.Id);
        Assert.Equal(("grind-harder", "channel", "run_once", "DONE", "[[sleep 60]] [[reply still working]]"),
            (edited.Name, edited.Context, edited.Misfire, edited.CompletionPromise, edited.Prompt));
        var nothing = await Tasks("edit", task.Id);
        Assert.Equal(1, nothing.ExitCode);
        Assert.Contains("nothing to change", nothing.Stderr);

        var start = await Tasks("start", task.Id);
        Assert.True(start.ExitCode == 0, start.ToString());
        Assert.Equal($"{task.Id} loop running, iteration 1 of 3", start.Stdout.Trim());
        var stop = await Tasks("stop", task.Id);
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.StartsWith($"{task.Id} loop stopped", stop.Stdout.Trim());
        Assert.Equal("stopped", (await Loop.Api.GetTaskAsync(task.Id)).LoopState);
    }

    [Fact]
    public async Task An_unreachable_daemon_says_how_to_start_it()
    {
        var url = $"http://127.0.0.1:{LoopDaemon.FreePort()}";
        var result = await LoopCli.RunAsync("tasks", "list", "--api-url", url);
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Stderr.TrimEnd().Split('\n'));
        Assert.StartsWith($"loop: the Loop daemon is not reachable at {url}", line);
        Assert.Contains("loop serve", line);
    }

    [Fact]
    public async Task Without_an_api_url_the_cli_calls_the_daemon_of_its_loop_home_at_its_api_addr()
    {
        var channel = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-cli-"));
        // The fixture's daemon listens on a port of its own, named in its home's config.json.
        var result = await LoopCli.RunAsync(new Dictionary<string, string?> { ["LOOP_HOME"] = Loop.Home }, "tasks", "list", "--channel-id", channel.Id);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("no tasks", result.Stdout.Trim());
    }

    [Fact]
    public async Task A_call_without_a_token_says_where_the_local_token_was_looked_for()
    {
        var elsewhere = Directory.CreateTempSubdirectory("loop-other-home-").FullName;
        var result = await LoopCli.RunAsync(new Dictionary<string, string?> { ["LOOP_HOME"] = elsewhere }, "tasks", "list", "--api-url", Loop.ApiUrl);
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Stderr.TrimEnd().Split('\n'));
        Assert.Contains($"no local token in {Path.Combine(elsewhere, "secrets", "local-token")}", line);
        Assert.Contains("set LOOP_HOME to the daemon's home", line);
    }

    [Fact]
    public async Task LOOP_API_URL_is_the_default_api_url()
    {
        var channel = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-cli-"));
        var env = new Dictionary<string, string?> { ["LOOP_API_URL"] = Loop.ApiUrl };
        var result = await LoopCli.RunAsync(env, "tasks", "list", "--channel-id", channel.Id);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("no tasks", result.Stdout.Trim());
    }
}

/// <summary>Bad usage: exit 2, the problem on stderr, nothing run.</summary>
public sealed class UsageTests
{
    [Theory]
    [InlineData("mcp")]
    [InlineData("mcp", "--channel-id", "ch_1", "--dir", "/tmp")]
    [InlineData("m", "--api-url", "ftp://example", "--channel-id", "ch_1")]
    [InlineData("mcp", "--channel-id", "ch_1", "--bogus")]
    [InlineData("tasks", "add", "--channel-id", "ch_1", "--type", "weekly", "--schedule", "5m", "--prompt", "x")]
    [InlineData("tasks", "add", "--channel-id", "ch_1", "--type", "cron", "--schedule", "5m")]
    [InlineData("tasks", "show")]
    [InlineData("tasks", "list", "--api-url", "localhost")]
    [InlineData("tasks")]
    public async Task Bad_usage_exits_2_with_the_problem_on_stderr(params string[] args)
    {
        var result = await LoopCli.RunAsync(args);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("loop: ", result.Stderr);
        Assert.Empty(result.Stdout);
    }

    [Fact]
    public async Task An_unknown_task_type_is_named_in_one_line()
    {
        var result = await LoopCli.RunAsync("tasks", "add", "--channel-id", "ch_1", "--type", "weekly", "--schedule", "5m", "--prompt", "x");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("loop: --type must be one of cron, interval, once, loop (got 'weekly')", result.Stderr.Split('\n')[0]);
    }

    [Fact]
    public async Task Mcp_without_a_channel_names_both_options()
    {
        var result = await LoopCli.RunAsync("mcp");
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("loop: loop mcp needs exactly one of --channel-id <id> and --dir <path>", result.Stderr);
    }

    [Theory]
    [InlineData("--channel-id")]
    [InlineData("--dir")]
    public async Task Mcp_with_an_option_but_not_its_value_says_so_and_points_to_its_help(string option)
    {
        var result = await LoopCli.RunAsync("mcp", option);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal([$"loop: Required argument missing for option: '{option}'.", "Run 'loop mcp --help' for usage."],
            result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(result.Stdout);
    }

    [Fact]
    public async Task Help_lists_the_commands_and_options()
    {
        var help = await LoopCli.RunAsync("tasks", "--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var word in new[] { "list", "add", "show", "toggle", "remove", "runs", "--api-url", "--token", "--json" })
        {
            Assert.Contains(word, help.Stdout);
        }
        var mcp = await LoopCli.RunAsync("mcp", "--help");
        Assert.Equal(0, mcp.ExitCode);
        Assert.Contains("--channel-id", mcp.Stdout);
        Assert.Contains("--dir", mcp.Stdout);
    }
}
