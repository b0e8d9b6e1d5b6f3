namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using Loop.Testing;

/// <summary>Several <c>loop serve</c> nodes on one PostgreSQL database serve one Loop.</summary>
[Collection("cluster")]
public sealed class ClusterTests
{
    [Fact]
    public async Task A_message_posted_to_one_node_is_answered_once_and_read_from_every_node()
    {
        await using var cluster = await LoopCluster.StartAsync(3);
        var id = (string)(await cluster[0].CreateChannelAsync())["id"]!;

        await cluster[1].PostMessageAsync(id, "[[reply hello from the cluster]]");

        var run = Assert.Single(await cluster[2].WaitForFinishedRunsAsync(id, 1));
        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Equal("hello from the cluster", (string)run["reply"]!);
        foreach (var node in cluster.Nodes)
        {
            var messages = await node.GetArrayAsync($"/api/channels/{id}/messages");
            Assert.Equal(["user", "agent"], messages.Select(m => (string)m!["role"]!));
            Assert.Single(await node.GetArrayAsync($"/api/channels/{id}/runs"));
        }
    }

    [Fact]
    public async Task Loop_cluster_status_lists_every_node_with_its_state_and_shows_a_killed_one_dead()
    {
        await using var cluster = await LoopCluster.StartAsync(2);
        var asNode1 = new[] { "--api-url", cluster[0].ApiUrl, "--token", cluster[0].LocalToken };

        var (code, output) = await LoopCli.RunAsync(new Dictionary<string, string>(), ["cluster", "status", .. asNode1]);
        Assert.Equal(0, code);
        Assert.Matches(@"(?m)^NODE\s+STATUS\s+ADDRESS\s+RUNNING\s+GRAINS\s+CPU", output);
        Assert.Matches(@"(?m)^node-1 \*\s+active\s+127\.0\.0\.1:\d+\s+0\s+\d+", output);
        Assert.Matches(@"(?m)^node-2\s+active\s+127\.0\.0\.1:\d+", output);

        await cluster[1].KillAsync();
        // Orleans declares it dead within seconds; the list says so from then on.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!((string)(await cluster[0].GetObjectAsync("/api/cluster"))["nodes"]!.AsArray()
            .Single(n => (string)n!["name"]! == "node-2")!["status"]! == "dead"))
        {
            Assert.True(DateTime.UtcNow < deadline, "node-2 was not declared dead within 60 s:\n" + cluster.Outputs());
            await Task.Delay(200);
        }
        (code, output) = await LoopCli.RunAsync(new Dictionary<string, string>(), ["cluster", "status", .. asNode1]);
        Assert.Equal(0, code);
        Assert.Matches(@"(?m)^node-2\s+dead\s+", output);
        (code, output) = await LoopCli.RunAsync(new Dictionary<string, string>(), ["cluster", "status", "--api-url", "http://127.0.0.1:1", "--token", "x"]);
        Assert.Equal(1, code);
        Assert.StartsWith("loop: ", output);
    }

    [Fact]
    public async Task While_PostgreSQL_is_away_requests_get_503_and_once_it_is_back_the_node_works_without_a_restart()
    {
        await using var server = await PostgresServer.StartNewAsync();
        await using var cluster = await LoopCluster.StartAsync(1, server: server);
        var node = cluster[0];
        var id = (string)(await node.CreateChannelAsync())["id"]!;

        await server.StopAsync();
        using (var refused = await node.Http.PostAsJsonAsync($"/api/channels/{id}/messages", new { content = "[[reply lost?]]", author = "alice" }))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("2", refused.Headers.GetValues("Retry-After").Single());
            Assert.Contains("send the request again", await refused.Content.ReadAsStringAsync());
        }

        await server.StartAsync();
        await node.PostMessageAsync(id, "[[reply back again]]");
        var run = Assert.Single(await node.WaitForFinishedRunsAsync(id, 1));
        Assert.Equal("back again", (string)run["reply"]!);
        Assert.Single(await node.GetArrayAsync($"/api/channels/{id}/messages"), m => (string)m!["role"]! == "user");
    }

    [Fact]
    public async Task The_live_feed_of_any_node_shows_what_happens_on_the_others()
    {
        await using var cluster = await LoopCluster.StartAsync(2);
        var id = (string)(await cluster[0].CreateChannelAsync())["id"]!;
        using var feed = await SseFeed.OpenAsync(cluster[1], lastEventId: null);

        await cluster[0].PostMessageAsync(id, "[[reply seen from every node]]");

        var received = await feed.WaitForAsync("message.received");
        Assert.Equal("node-1", (string)received.Data["node"]!);
        Assert.Equal(id, (string)received.Data["channel_id"]!);
        var finished = await feed.WaitForAsync("run.finished");
        Assert.Equal("seen from every node", (string)finished.Data["text"]!);
    }

    [Fact]
    public async Task When_the_node_running_a_channel_is_killed_its_run_fails_with_a_reason_and_another_node_answers()
    {
        await using var cluster = await LoopCluster.StartAsync(3);
        var dir = AgentUser.CreateDir();
        var id = (string)(await cluster[0].CreateChannelAsync(dir))["id"]!;

        // The first attempt hangs; the one after the failover finds the mark it left and answers.
        await cluster[0].PostMessageAsync(id, "[[sh test -f attempted || { touch attempted; sleep 300; }]] [[reply answered after the failover]]");
        var running = await cluster[0].WaitForRunningAsync(id);
        var runId = (string)running["id"]!;
        var victim = await cluster.NodeAtWorkAsync(runId, Path.Combine(dir, "attempted"));
        var node = cluster.NameOf(victim);
        await victim.KillAsync();

        var survivor = cluster.Nodes.First(n => n != victim);
        List<System.Text.Json.Nodes.JsonObject> runs;
        try
        {
            runs = await survivor.WaitForFinishedRunsAsync(id, 2, TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + cluster.Outputs());
        }
        Assert.Equal(runId, (string)runs[0]["id"]!);
        Assert.Equal("failed", (string)runs[0]["status"]!);
        Assert.Contains($"node {node} stopped", (string)runs[0]["error"]!);
        Assert.Equal("succeeded", (string)runs[1]["status"]!);
        Assert.Contains("answered after the failover", (string)runs[1]["reply"]!);
        var messages = await survivor.GetArrayAsync($"/api/channels/{id}/messages");
        Assert.Single(messages, m => (string)m!["role"]! == "user");
        Assert.Single(messages, m => (string)m!["role"]! == "agent");

        // Back, the node removes the container its first life left running.
        await victim.RestartAsync();
        Assert.Empty(await DockerCli.ContainersAsync($"loop.run={runId}"));
    }
}
