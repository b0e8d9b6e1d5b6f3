namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>
/// Channels in direct mode: a real <c>loop serve</c> calls a local double of the Anthropic Messages
/// API (streamed, as documented) instead of running a container, with the channel's stored
/// conversation, and records the reply, its usage and its cost.
/// </summary>
public sealed class DirectModeTests
{
    [Fact]
    public async Task A_direct_channel_answers_from_the_api_with_its_conversation_streams_the_reply_and_records_usage_and_cost()
    {
        await using var api = await AnthropicDouble.StartAsync();
        await using var loop = await StartAsync(api, AnthropicDouble.ApiKey);
        using var created = await loop.Http.PostAsJsonAsync("/api/channels", new { name = "helpdesk", mode = "Direct", model = "claude-sonnet-4-5" });
        var channel = await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created);
        Assert.Equal("direct", (string?)channel["mode"]);
        Assert.Equal("claude-sonnet-4-5", (string?)channel["model"]);
        var id = (string)channel["id"]!;
        using var feed = await SseFeed.OpenAsync(loop, null);

        // The reply streams while it is written: the run is still running when its first words are out.
        var held = api.HoldNextStream();
        api.Enqueue(new AnthropicAnswer.Reply("Paris is the capital of France.", new AnthropicUsage(Input: 1_000, Output: 500, CacheWrite: 200, CacheRead: 300), Chunks: 4));
        await loop.PostMessageAsync(id, "What is the capital of France?");
        await held.Arrived.WaitAsync(TimeSpan.FromSeconds(60));
        var firstWords = await NextOutputAsync(feed, line => line.Contains("\"text_delta\"", StringComparison.Ordinal));
        Assert.Contains("\"type\":\"stream_event\"", firstWords.Text);
        Assert.Contains("Paris ", firstWords.Text);
        Assert.Equal("running", (string?)(await loop.GetObjectAsync($"/api/runs/{firstWords.RunId}"))["status"]);
        held.Release();
        var whole = await NextOutputAsync(feed, line => line.StartsWith("{\"type\":\"assistant\"", StringComparison.Ordinal));
        Assert.Contains("Paris is the capital of France.", whole.Text);

        var first = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("succeeded", (string?)first["status"]);
        Assert.Equal("Paris is the capital of France.", (string?)first["reply"]);
        Assert.Equal("claude-sonnet-4-5", (string?)first["model"]);
        Assert.Null(first["container_id"]);
        var run = await loop.GetObjectAsync($"/api/runs/{first["id"]}");
        var usage = run["usage"]!;
        Assert.Equal(1_000, (long)usage["input_tokens"]!);
        Assert.Equal(500, (long)usage["output_tokens"]!);
        Assert.Equal(200, (long)usage["cache_creation_input_tokens"]!);
        Assert.Equal(300, (long)usage["cache_read_input_tokens"]!);
        // claude-sonnet-4-5's list prices: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million.
        Assert.Equal(0.01134m, (decimal)usage["cost_usd"]!);
        Assert.Equal(1, (int)usage["num_turns"]!);

        var call = Assert.Single(api.Calls);
        Assert.True(call.Authorized);
        Assert.NotNull(call.Version);
        Assert.Equal("claude-sonnet-4-5", call.Model);
        Assert.Contains("\"helpdesk\"", call.System);
        Assert.Equal([("user", "alice: What is the capital of France?")], call.Messages);

        // The next message carries the first exchange along.
        await loop.PostMessageAsync(id, "And of Germany?", author: "bob");
        var second = (await loop.WaitForFinishedRunsAsync(id, 2))[1];
        Assert.Equal("Echo: bob: And of Germany?", (string?)second["reply"]);
        Assert.Equal(
        [
            ("user", "alice: What is the capital of France?"),
            ("assistant", "Paris is the capital of France."),
            ("user", "bob: And of Germany?"),
        ], api.Calls[1].Messages);
        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");
        Assert.Equal(["user", "agent", "user", "agent"], messages.Select(m => (string)m!["role"]!));

        // A reset session starts a new conversation.
        using (var reset = await loop.Http.PostAsync($"/api/channels/{id}/session/reset", null))
        {
            await LoopDaemon.ReadObjectAsync(reset, HttpStatusCode.OK);
        }
        await loop.PostMessageAsync(id, "Hello again");
        await loop.WaitForFinishedRunsAsync(id, 3);
        Assert.Equal([("user", "alice: Hello again")], api.Calls[2].Messages);

        // No container ran for the channel, and the key is in no log line, event, or file of the Loop home.
        Assert.Empty(await DockerCli.ContainersAsync($"loop.channel={id}"));
        Assert.DoesNotContain(AnthropicDouble.ApiKey, loop.Output);
        Assert.DoesNotContain(AnthropicDouble.ApiKey, firstWords.Text + whole.Text);
        Assert.True(File.Exists(Path.Combine(loop.Home, "loop.db")));
        Assert.Empty(FilesHolding(loop.Home, AnthropicDouble.ApiKey));
    }

    [Fact]
    public async Task An_error_of_the_api_fails_the_run_with_a_reply_that_says_why_and_the_conversation_goes_on()
    {
        await using var api = await AnthropicDouble.StartAsync();
        await using var loop = await StartAsync(api, AnthropicDouble.ApiKey);
        var id = await CreateDirectChannelAsync(loop);

        // Overloaded at every attempt (the SDK tries again before it gives up).
        api.Refusing = new AnthropicAnswer.Refusal(529, "overloaded_error", "Overloaded");
        await loop.PostMessageAsync(id, "first question");
        var failed = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("failed", (string?)failed["status"]);
        Assert.Contains("the Anthropic API refused the call with 529 overloaded_error: Overloaded", (string?)failed["error"]);
        var said = (await loop.GetArrayAsync($"/api/channels/{id}/messages")).Last()!;
        Assert.Equal("system", (string?)said["role"]);
        Assert.StartsWith("The agent run failed: the Anthropic API refused the call with 529 overloaded_error: Overloaded", (string?)said["content"]);

        // Overloaded in the middle of the reply: the stream's error event.
        api.Refusing = null;
        api.Enqueue(new AnthropicAnswer.BrokenStream("Half an ans", "overloaded_error", "Overloaded"));
        await loop.PostMessageAsync(id, "second question");
        var broken = (await loop.WaitForFinishedRunsAsync(id, 2))[1];
        Assert.Equal("failed", (string?)broken["status"]);
        Assert.Contains("the Anthropic API broke off the reply with overloaded_error: Overloaded", (string?)broken["error"]);

        // The questions left unanswered go along with the next one, as one turn of the user.
        await loop.PostMessageAsync(id, "third question");
        var answered = (await loop.WaitForFinishedRunsAsync(id, 3))[2];
        Assert.Equal("succeeded", (string?)answered["status"]);
        Assert.Equal([("user", "alice: first question\nalice: second question\nalice: third question")], api.Calls[^1].Messages);
    }

    [Fact]
    public async Task A_key_the_api_refuses_fails_the_run_saying_to_check_the_key()
    {
        await using var api = await AnthropicDouble.StartAsync();
        await using var loop = await StartAsync(api, "sk-ant-api03-not-the-right-one");
        var id = await CreateDirectChannelAsync(loop);

        await loop.PostMessageAsync(id, "hello?");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();

        Assert.Equal("failed", (string?)run["status"]);
        Assert.Contains("401 authentication_error: invalid x-api-key (check anthropic_api_key)", (string?)run["error"]);
        Assert.False(Assert.Single(api.Calls).Authorized);
        Assert.DoesNotContain("sk-ant-api03-not-the-right-one", loop.Output);
    }

    [Fact]
    public async Task Without_a_key_a_direct_run_fails_saying_how_to_set_one_and_bad_modes_and_models_are_refused()
    {
        await using var api = await AnthropicDouble.StartAsync();
        await using var loop = await StartAsync(api, key: null);
        var id = await CreateDirectChannelAsync(loop);

        await loop.PostMessageAsync(id, "hello?");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("failed", (string?)run["status"]);
        var reply = (string?)(await loop.GetArrayAsync($"/api/channels/{id}/messages")).Last()!["content"];
        Assert.Contains("needs an API key: set anthropic_api_key in config.json (or ANTHROPIC_API_KEY in the environment of loop serve)", reply);
        Assert.Empty(api.Calls);

        foreach (var (body, field, words) in new (object Body, string Field, string Words)[]
        {
            (new { mode = "api" }, "mode", "mode must be \"container\" (Claude Code in a Docker container, with tools) or \"direct\" (chat only, through the Anthropic API) (found \"api\")"),
            (new { mode = "" }, "mode", "mode must be"),
            (new { model = "--dangerously-skip-permissions" }, "model", "model must be a model name"),
            (new { model = "claude sonnet" }, "model", "model must be a model name"),
            (new { model = new string('m', 101) }, "model", "1 to 100 characters"),
        })
        {
            using var refused = await loop.Http.PostAsJsonAsync("/api/channels", body);
            var text = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{body}: {(int)refused.StatusCode} {text}");
            var problem = JsonNode.Parse(text)!;
            Assert.NotNull(problem["errors"]?[field]);
            Assert.Contains(words, (string?)problem["detail"]);
        }

        // A channel of a directory keeps its mode: asking for another is a conflict, not a quiet change.
        var project = AgentUser.CreateDir("loop-direct-");
        Assert.Equal("container", (string?)(await loop.CreateChannelAsync(project))["mode"]);
        using var other = await loop.Http.PostAsJsonAsync("/api/channels", new { dir_path = project, mode = "direct" });
        Assert.Equal(HttpStatusCode.Conflict, other.StatusCode);
        Assert.Contains("exists already with mode \"container\"", (string?)JsonNode.Parse(await other.Content.ReadAsStringAsync())!["detail"]);
    }

    [Fact]
    public async Task A_channel_is_switched_to_direct_mode_and_back_its_model_changed_and_direct_runs_get_the_system_prompt_file()
    {
        var prompt = Path.Combine(AgentUser.CreateDir("loop-system-"), "SYSTEM.md");
        await File.WriteAllTextAsync(prompt, "Answer in French.");
        await using var api = await AnthropicDouble.StartAsync();
        await using var loop = await StartAsync(api, AnthropicDouble.ApiKey, new JsonObject { ["system_prompt_file"] = prompt });
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        var direct = await ChangeAsync(loop, id, new { mode = "direct", model = "claude-haiku-4-5" }, HttpStatusCode.OK);
        Assert.Equal("direct", (string?)direct["mode"]);
        Assert.Equal("claude-haiku-4-5", (string?)direct["model"]);
        api.Enqueue(new AnthropicAnswer.Reply("Bonjour."));
        await loop.PostMessageAsync(id, "Hello?");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("succeeded", (string?)run["status"]);
        Assert.Equal("claude-haiku-4-5", (string?)api.Calls[^1].Body["model"]);
        Assert.EndsWith("Answer in French.", api.Calls[^1].System);

        Assert.Null((await ChangeAsync(loop, id, new { model = "" }, HttpStatusCode.OK))["model"]);
        foreach (var (body, field) in new (object, string)[] { (new { mode = "api" }, "mode"), (new { model = "claude sonnet" }, "model") })
        {
            Assert.NotNull((await ChangeAsync(loop, id, body, HttpStatusCode.BadRequest))["errors"]?[field]);
        }
        Assert.Equal("container", (string?)(await ChangeAsync(loop, id, new { mode = "container" }, HttpStatusCode.OK))["mode"]);
        Assert.Equal("container", (string?)(await loop.GetObjectAsync($"/api/channels/{id}"))["mode"]);
    }

    private static async Task<JsonObject> ChangeAsync(LoopDaemon loop, string id, object body, HttpStatusCode expected)
    {
        using var response = await loop.Http.PatchAsJsonAsync($"/api/channels/{id}", body);
        return await LoopDaemon.ReadObjectAsync(response, expected);
    }

    private static Task<LoopDaemon> StartAsync(AnthropicDouble api, string? key, JsonObject? config = null)
    {
        config ??= [];
        config["anthropic_base_url"] = api.BaseUrl;
        return LoopDaemon.StartAsync(
            config,
            // The key as users keep it out of files: in the daemon's environment. Empty is unset.
            new Dictionary<string, string?> { ["ANTHROPIC_API_KEY"] = key ?? "", ["LOOP_ANTHROPIC_API_KEY"] = "" });
    }

    private static async Task<string> CreateDirectChannelAsync(LoopDaemon loop)
    {
        using var response = await loop.Http.PostAsJsonAsync("/api/channels", new { mode = "direct" });
        return (string)(await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.Created))["id"]!;
    }

    private static async Task<(string RunId, string Text)> NextOutputAsync(SseFeed feed, Func<string, bool> matches)
    {
        while (true)
        {
            var output = await feed.WaitForAsync("run.output");
            var text = (string)output.Data["text"]!;
            if (matches(text))
            {
                return ((string)output.Data["run_id"]!, text);
            }
        }
    }

    /// <summary>Every file under <paramref name="root"/> (the store and its journal among them) whose
    /// bytes hold <paramref name="secret"/>. The daemon's sockets have no bytes to read.</summary>
    private static List<string> FilesHolding(string root, string secret)
    {
        var needle = Encoding.UTF8.GetBytes(secret);
        return Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(file => !File.GetAttributes(file).HasFlag(FileAttributes.Device) && !file.EndsWith(".sock", StringComparison.Ordinal))
            .Where(file => File.ReadAllBytes(file).AsSpan().IndexOf(needle) >= 0)
            .ToList();
    }
}
