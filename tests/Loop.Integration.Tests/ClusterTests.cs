namespace Loop.Integration.Tests;

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
}
