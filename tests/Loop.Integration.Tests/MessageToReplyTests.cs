namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

/// <summary>A chat message becomes a container run and a stored reply.</summary>
public sealed class MessageToReplyTests
{
    [Fact]
    public async Task A_message_becomes_a_reply_with_usage_recorded()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var channel = await loop.CreateChannelAsync(project);
        var id = (string)channel["id"]!;

        var accepted = await loop.PostMessageAsync(id, "[[reply hello from the agent]] [[usage in=120 out=45 cache_read=7 cache_write=9 cost=0.0123]] [[pwd]]");
        Assert.Equal("user", (string)accepted["role"]!);
        Assert.True((long)accepted["id"]! > 0);

        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Contains("hello from the agent", (string)run["reply"]!);
        Assert.Contains(project, (string)run["reply"]!); // the project dir is mounted at its own path
        Assert.Equal(0, (int)run["exit_code"]!);
        Assert.False(string.IsNullOrEmpty((string?)run["session_id"]));
        Assert.False(string.IsNullOrEmpty((string?)run["container_id"]));
        Assert.NotNull(run["started_at"]);
        Assert.NotNull(run["finished_at"]);
        var usage = run["usage"]!;
        Assert.Equal(120, (long)usage["input_tokens"]!);
        Assert.Equal(45, (long)usage["output_tokens"]!);
        Assert.Equal(7, (long)usage["cache_read_input_tokens"]!);
        Assert.Equal(9, (long)usage["cache_creation_input_tokens"]!);
        Assert.Equal(0.0123m, (decimal)usage["cost_usd"]!);

        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");
        Assert.Equal(["user", "agent"], messages.Select(m => (string)m!["role"]!));
        Assert.Contains("hello from the agent", (string)messages[1]!["content"]!);
        Assert.Equal((string)run["id"]!, (string)messages[1]!["run_id"]!);

        var single = await loop.GetObjectAsync($"/api/runs/{run["id"]}");
        Assert.Equal("succeeded", (string)single["status"]!);
        Assert.Equal((string)run["session_id"]!, (string)(await loop.GetObjectAsync($"/api/channels/{id}"))["session_id"]!);

        // the container is gone once the run has ended
        Assert.Empty(await DockerCli.ContainersAsync($"loop.run={run["id"]}"));
    }

    [Fact]
    public async Task Registering_a_channel_is_idempotent_per_directory_and_a_channel_without_dir_works_in_the_loop_home()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");

        using var first = await loop.Http.PostAsJsonAsync("/api/channels", new { dir_path = project });
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        using var again = await loop.Http.PostAsJsonAsync("/api/channels", new { dir_path = project + "/" });
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal((string)(await first.Content.ReadFromJsonAsync<JsonObject>())!["id"]!, (string)(await again.Content.ReadFromJsonAsync<JsonObject>())!["id"]!);

        var homeless = await loop.CreateChannelAsync();
        var id = (string)homeless["id"]!;
        await loop.PostMessageAsync(id, "[[pwd]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Contains(Path.Combine(loop.Home, id, "work"), (string)run["reply"]!);
    }

    [Fact]
    public async Task The_session_is_resumed_and_an_unknown_session_is_retried_fresh()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync(AgentUser.CreateDir("loop-proj-")))["id"]!;

        await loop.PostMessageAsync(id, "first [[session]]");
        var first = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var session = (string)first["session_id"]!;

        await loop.PostMessageAsync(id, "second [[session]]");
        var second = (await loop.WaitForFinishedRunsAsync(id, 2))[1];
        Assert.Equal("succeeded", (string)second["status"]!);
        Assert.Equal(session, (string)second["session_id"]!);
        Assert.Contains(session, (string)second["reply"]!); // the agent saw the resumed session

        // The agent's state is wiped: the stored session no longer exists for it.
        Directory.Delete(Path.Combine(loop.Home, "claude-state", id), recursive: true);
        await loop.PostMessageAsync(id, "third [[session]]");
        var third = (await loop.WaitForFinishedRunsAsync(id, 3))[2];
        Assert.Equal("succeeded", (string)third["status"]!);
        var fresh = (string)third["session_id"]!;
        Assert.NotEqual(session, fresh);
        Assert.Equal(fresh, (string)(await loop.GetObjectAsync($"/api/channels/{id}"))["session_id"]!);
    }

    [Fact]
    public async Task Messages_sent_during_a_run_go_together_into_the_next_run_in_order()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync(AgentUser.CreateDir("loop-proj-")))["id"]!;

        await loop.PostMessageAsync(id, "[[sleep 3]] first", author: "alice");
        await loop.WaitForRunningAsync(id);
        await loop.PostMessageAsync(id, "second", author: "bob");
        await loop.PostMessageAsync(id, "third", author: "carol");

        var runs = await loop.WaitForFinishedRunsAsync(id, 2);
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.Equal("succeeded", (string)r["status"]!));
        Assert.Equal("alice: [[sleep 3]] first", (string)runs[0]["prompt"]!);
        Assert.Equal("bob: second\ncarol: third", (string)runs[1]["prompt"]!);
    }
}
