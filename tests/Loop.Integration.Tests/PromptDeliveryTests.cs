namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>What a person writes reaches the agent exactly, through its standard input: never on a
/// command line, where its size is limited and every user of the host can read it.</summary>
public sealed class PromptDeliveryTests
{
    private const int MaxMessageLength = 100_000;

    /// <summary>The double's default reply: what it was given, after "echo: ".</summary>
    private static string Echo(params string[] messages) => "echo: " + string.Join("\n", messages.Select(m => "alice: " + m));

    /// <summary>Text of exactly <paramref name="length"/> UTF-16 units, mostly multi-byte in UTF-8, that
    /// neither starts nor ends with white space nor splits a surrogate pair.</summary>
    private static string Text(int length, string seed = "größer 🦀 ")
    {
        var text = new StringBuilder("start ");
        while (text.Length < length - 4)
        {
            text.Append(seed);
        }
        text.Length = length - 4;
        if (char.IsHighSurrogate(text[^1]))
        {
            text[^1] = 'x';
        }
        return text.Append(" end").ToString();
    }

    /// <summary>Holds the agent until the test has done its part: it waits for <c>go</c> in its project.</summary>
    private const string HoldUntilGo = "[[sh while [ ! -e go ]; do sleep 0.1; done]]";

    [Fact]
    public async Task A_message_of_the_maximum_size_reaches_the_agent_intact_and_one_more_character_is_refused()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;
        // About 140 KB of UTF-8: more than one command-line argument may hold (128 KiB).
        var content = Text(MaxMessageLength);
        Assert.True(Encoding.UTF8.GetByteCount(content) > 128 * 1024);

        await loop.PostMessageAsync(id, content);
        using var tooLong = await loop.Http.PostAsJsonAsync($"/api/channels/{id}/messages", new { author = "alice", content = content + "x" });
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();

        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Equal(Echo(content), (string)run["reply"]!);
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Contains($"at most {MaxMessageLength} characters", await tooLong.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_batch_of_many_messages_in_any_unicode_folded_into_one_run_reaches_the_agent_intact()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir();
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        await loop.PostMessageAsync(id, HoldUntilGo);
        await loop.WaitForRunningAsync(id);

        // Posted while the first run holds the channel: they all go into the next run, together
        // far beyond what a command line may hold.
        string[] unicode =
        [
            "--help -p and a dash-led line that looks like an option",
            "emoji 🦀👩🏽‍💻🏳️‍🌈, combining e\u0301 a\u0308\u0323, zero width\u200B\u200Djoin, BOM\uFEFF inside",
            "right to left: שלום עולם, مرحبا بالعالم, mixed \u202Eoverride\u202C",
            "CJK 漢字かなカナ한국어, math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑∫√, tab\there, CRLF\r\nnext line, bell \u0007 and \u001B[31m escape",
            "quotes \" ' ` $HOME $(id) ; | & < > \\ [[not a directive]]",
        ];
        var batch = unicode.Concat(Enumerable.Range(1, 40).Select(i => $"message {i}: " + Text(5_000, $"שלום {i} 漢字 "))).ToArray();
        foreach (var message in batch)
        {
            await loop.PostMessageAsync(id, message);
        }
        await File.WriteAllTextAsync(Path.Combine(project, "go"), "");
        var runs = await loop.WaitForFinishedRunsAsync(id, 2);

        Assert.Equal(["succeeded", "succeeded"], runs.Select(r => (string)r["status"]!));
        Assert.Equal(Echo(batch), (string)runs[1]["reply"]!);
        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages?limit=500");
        Assert.Equal(batch, messages.Where(m => (string)m!["role"]! == "user" && (string?)m["run_id"] == (string)runs[1]["id"]!).Select(m => (string)m!["content"]!));
    }

    [Fact]
    public async Task A_NUL_or_half_a_surrogate_pair_gets_a_400_naming_the_field_and_nothing_is_stored()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        using var nul = await loop.Http.PostAsJsonAsync($"/api/channels/{id}/messages", new { author = "alice", content = "before\0after" });
        using var halfPair = await loop.Http.PostAsync($"/api/channels/{id}/messages",
            new StringContent("""{"author":"alice","content":"half \ud83e pair"}""", Encoding.UTF8, "application/json"));
        using var wrongType = await loop.Http.PostAsync($"/api/channels/{id}/messages",
            new StringContent("""{"author":"alice","content":5}""", Encoding.UTF8, "application/json"));
        using var nulPrompt = await loop.Http.PostAsJsonAsync("/api/tasks",
            new { channel_id = id, type = "once", schedule = "1h", prompt = "do\0this" });

        var nulProblem = await LoopDaemon.ReadObjectAsync(nul, HttpStatusCode.BadRequest);
        var halfPairProblem = await LoopDaemon.ReadObjectAsync(halfPair, HttpStatusCode.BadRequest);
        var promptProblem = await LoopDaemon.ReadObjectAsync(nulPrompt, HttpStatusCode.BadRequest);
        var wrongTypeProblem = await LoopDaemon.ReadObjectAsync(wrongType, HttpStatusCode.BadRequest);
        Assert.Contains("content must be text in double quotes", (string)wrongTypeProblem["errors"]!["content"]![0]!);
        Assert.Contains("NUL character (U+0000) at position 6", (string)nulProblem["errors"]!["content"]![0]!);
        Assert.NotNull(halfPairProblem["errors"]!["content"]);
        Assert.Contains("content holds half of a surrogate pair", (string)halfPairProblem["errors"]!["content"]![0]!);
        Assert.Contains("NUL character (U+0000) at position 2", (string)promptProblem["errors"]!["prompt"]![0]!);
        Assert.DoesNotContain("System.", nulProblem.ToJsonString() + halfPairProblem.ToJsonString() + promptProblem.ToJsonString() + wrongTypeProblem.ToJsonString());
        Assert.DoesNotContain("Loop.Api", halfPairProblem.ToJsonString());
        Assert.Empty(await loop.GetArrayAsync($"/api/channels/{id}/messages"));
        Assert.Empty(await loop.GetArrayAsync($"/api/channels/{id}/runs"));
        Assert.Empty(await loop.GetArrayAsync($"/api/tasks?channel_id={id}"));
    }

    [Fact]
    public async Task Message_text_is_in_neither_docker_inspect_nor_any_hosts_command_line_while_the_agent_runs()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir();
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var marker = "private-words-" + Guid.NewGuid().ToString("N");

        await loop.PostMessageAsync(id, $"{HoldUntilGo} {marker}");
        var running = await loop.WaitForRunningAsync(id);
        var container = await ContainerOfAsync((string)running["id"]!);
        // The agent itself is running (not only its container): its own command line is on the host too.
        await WaitForAsync(async () => (await DockerCli.RunAsync("top", container)).Contains("claude"), "claude to start in " + container);
        var inspect = await DockerCli.RunAsync("inspect", container);
        var cmd = JsonNode.Parse(await DockerCli.RunAsync("inspect", "--format", "{{json .Config.Cmd}}", container))!.AsArray();
        var commandLines = HostCommandLines();
        await File.WriteAllTextAsync(Path.Combine(project, "go"), "");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();

        Assert.Contains("--dangerously-skip-permissions", cmd.Select(a => (string)a!));
        Assert.DoesNotContain(marker, inspect);
        Assert.Contains(commandLines, c => c.Contains("--mcp-config", StringComparison.Ordinal)); // the agent's own, seen from the host
        Assert.DoesNotContain(commandLines, c => c.Contains(marker, StringComparison.Ordinal));
        Assert.Equal("succeeded", (string)run["status"]!);
    }

    [Fact]
    public async Task A_failed_runs_error_text_stays_out_of_the_log_at_the_default_level()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["log_level"] = "info" });
        var id = (string)(await loop.CreateChannelAsync())["id"]!;
        var said = "private-words-" + Guid.NewGuid().ToString("N");
        var agentError = "agent-error-" + Guid.NewGuid().ToString("N");

        await loop.PostMessageAsync(id, $"{said} [[fail {agentError}]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();

        Assert.Equal("failed", (string)run["status"]!);
        Assert.Contains(agentError, (string)run["error"]!); // the run itself says why
        // The run's end is logged just after it is stored.
        var ended = $"Run {run["id"]} for channel {id} ended failed (exit code 1)";
        await WaitForAsync(() => Task.FromResult(loop.Output.Contains(ended)), "the log line of the run's end");
        var output = loop.Output;
        Assert.DoesNotContain(said, output);
        Assert.DoesNotContain(agentError, output);
    }

    private static async Task<string> ContainerOfAsync(string runId)
    {
        string[] containers = [];
        await WaitForAsync(async () => (containers = await DockerCli.ContainersAsync($"loop.run={runId}")).Length > 0, $"the container of {runId}");
        return containers.Single();
    }

    /// <summary>The command line of every process on this host, containers' included.</summary>
    private static List<string> HostCommandLines()
    {
        var lines = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => Path.GetFileName(d).All(char.IsAsciiDigit)))
        {
            try
            {
                lines.Add(File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' '));
            }
            catch (IOException)
            {
                // the process ended meanwhile
            }
        }
        return lines;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited 60 s for {what}");
            }
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task The_system_prompt_files_reach_the_agent_global_first_then_the_projects()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["system_prompt_file"] = "system.md" });
        File.WriteAllText(Path.Combine(loop.Home, "system.md"), "Answer in French.");
        var project = AgentUser.CreateDir();
        Directory.CreateDirectory(Path.Combine(project, ".loop"));
        File.WriteAllText(Path.Combine(project, "AGENT.md"), "This project uses tabs.");
        File.WriteAllText(Path.Combine(project, ".loop", "config.json"), """{ "system_prompt_file": "AGENT.md" }""");
        var withProject = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var plain = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(withProject, "[[system]]");
        Assert.Equal("system: Answer in French.\n\nThis project uses tabs.", (string)(await loop.WaitForFinishedRunsAsync(withProject, 1))[0]["reply"]!);
        await loop.PostMessageAsync(plain, "[[system]]");
        Assert.Equal("system: Answer in French.", (string)(await loop.WaitForFinishedRunsAsync(plain, 1))[0]["reply"]!);

        // The project's file must stay in the project: a link out of it fails the run, and nothing is read.
        var secret = Path.Combine(Directory.CreateTempSubdirectory("loop-secret-").FullName, "secret.txt");
        File.WriteAllText(secret, "TOP SECRET");
        File.Delete(Path.Combine(project, "AGENT.md"));
        File.CreateSymbolicLink(Path.Combine(project, "AGENT.md"), secret);
        await loop.PostMessageAsync(withProject, "[[system]]");
        var refused = (await loop.WaitForFinishedRunsAsync(withProject, 2))[1];
        Assert.Equal("failed", (string)refused["status"]!);
        Assert.Contains("system_prompt_file AGENT.md leads outside the project directory", (string)refused["error"]!);
        Assert.DoesNotContain("TOP SECRET", refused.ToJsonString());
    }
}
