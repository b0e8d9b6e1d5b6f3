namespace Loop.Domain.Tests;

using Loop.Runtime;

public sealed class ClusterEventRelayTests
{
    [Fact]
    public void An_event_crosses_to_another_node_with_the_name_of_the_node_it_happened_on()
    {
        var at = new DateTimeOffset(2026, 12, 3, 7, 0, 0, TimeSpan.Zero);
        var sent = new LoopEvent("run.finished", at, "ch_1", "run_1", "the reply, with \"quotes\" and ünïcode");

        var received = ClusterEventRelay.Decode(ClusterEventRelay.Encode(sent, "node-2"));

        Assert.Equal(sent with { Node = "node-2" }, received);
    }

    [Fact]
    public void A_long_text_is_cut_to_fit_one_notification_and_what_is_not_ours_is_ignored()
    {
        var text = string.Concat(Enumerable.Repeat("\"é\" ", 5_000)); // escapes make the JSON longer than the text
        var payload = ClusterEventRelay.Encode(new LoopEvent("run.output", DateTimeOffset.UnixEpoch, "ch_1", "run_1", text), "node-1");

        Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(payload), 1, 7_999);
        var received = ClusterEventRelay.Decode(payload)!;
        Assert.EndsWith("…", received.Text);
        Assert.StartsWith(received.Text[..^1], text);
        Assert.Null(ClusterEventRelay.Decode("not json"));
        Assert.Null(ClusterEventRelay.Decode("""{"kind": "x"}"""));
    }

    [Fact]
    public async Task A_relayed_event_reaches_the_live_feed_but_not_this_nodes_own_parts()
    {
        var hub = new LoopEventHub();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var parts = hub.SubscribeAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        var feed = hub.FollowAsync(null, stop.Token).GetAsyncEnumerator(stop.Token);
        var (nextPart, nextFeed) = (parts.MoveNextAsync(), feed.MoveNextAsync()); // both subscribe

        hub.Publish(new LoopEvent("run.finished", DateTimeOffset.UnixEpoch, "ch_1", "run_1", "elsewhere") { Node = "node-2" });
        hub.Publish(new LoopEvent("run.finished", DateTimeOffset.UnixEpoch, "ch_2", "run_2", "here"));

        Assert.True(await nextFeed);
        Assert.Equal("node-2", feed.Current.Node);
        Assert.True(await nextPart);
        Assert.Equal("here", parts.Current.Text);
        await stop.CancelAsync();
    }
}
