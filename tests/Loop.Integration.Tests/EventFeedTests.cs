namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>The live feed as the dashboard uses it: resuming after a reconnect, the recent events a
/// page starts with, and the end of a long conversation.</summary>
public sealed class EventFeedTests
{
    [Fact]
    public async Task A_feed_that_reconnects_with_its_last_event_id_gets_exactly_what_it_missed()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;

        string lastSeen;
        using (var feed = await SseFeed.OpenAsync(loop, lastEventId: null))
        {
            await loop.PostMessageAsync(channel, "[[reply first]]");
            var finished = await feed.WaitForAsync("run.finished");
            lastSeen = finished.Id;
        }

        // While nobody listens: a second message and its run.
        await loop.PostMessageAsync(channel, "[[reply second]]");
        var runs = await loop.WaitForFinishedRunsAsync(channel, 2);
        var second = (string)runs[1]["id"]!;

        using var resumed = await SseFeed.OpenAsync(loop, lastSeen);
        var missed = new List<SseEvent>();
        while (missed.LastOrDefault()?.Kind != "run.finished")
        {
            missed.Add(await resumed.NextAsync());
        }
        Assert.Equal(["message.received", "run.queued", "run.started", "run.finished"], missed.Select(e => e.Kind));
        Assert.Equal("alice: [[reply second]]", (string)missed[0].Data["text"]!);
        Assert.All(missed.Skip(1), e => Assert.Equal(second, (string)e.Data["run_id"]!));
        Assert.Equal("second", (string)missed[^1].Data["text"]!);
        Assert.All(missed, e => Assert.Equal(channel, (string)e.Data["channel_id"]!));

        // An id from another daemon process (say, before a restart) replays everything kept since this one started.
        using var afterRestart = await SseFeed.OpenAsync(loop, "0badc0de.99999");
        var replayed = await afterRestart.NextAsync();
        Assert.Equal("message.received", replayed.Kind);
        Assert.Equal("alice: [[reply first]]", (string)replayed.Data["text"]!);
    }

    [Fact]
    public async Task Recent_events_come_newest_first_without_output_lines_and_only_for_users()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(channel, "[[reply streamed line]]");
        var run = (string)(await loop.WaitForFinishedRunsAsync(channel, 1))[0]["id"]!;

        var recent = await loop.GetArrayAsync("/api/events/recent?limit=3");
        Assert.Equal(["run.finished", "run.started", "run.queued"], recent.Select(e => (string)e!["kind"]!));
        Assert.All(recent, e => Assert.Equal(run, (string)e!["run_id"]!));
        var all = await loop.GetArrayAsync("/api/events/recent");
        Assert.Equal(4, all.Count); // message.received too, and no run.output lines
        Assert.Equal("message.received", (string)all[^1]!["kind"]!);
        Assert.Equal(4, all.Select(e => (string)e!["id"]!).Distinct().Count());

        using var container = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!;
        container.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.Forbidden, (await container.GetAsync("/api/events/recent")).StatusCode);
        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/events/recent")).StatusCode);
    }

    [Fact]
    public async Task Latest_gives_the_end_of_the_conversation_in_order_and_pages_back_with_before()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(channel, "[[reply one]]");
        await loop.WaitForFinishedRunsAsync(channel, 1);
        await loop.PostMessageAsync(channel, "[[reply two]]");
        await loop.WaitForFinishedRunsAsync(channel, 2);

        var latest = await loop.GetArrayAsync($"/api/channels/{channel}/messages?latest=2");
        Assert.Equal(["[[reply two]]", "two"], latest.Select(m => (string)m!["content"]!));
        Assert.True((long)latest[0]!["id"]! < (long)latest[1]!["id"]!);
        var before = await loop.GetArrayAsync($"/api/channels/{channel}/messages?latest=10&before={(long)latest[0]!["id"]!}");
        Assert.Equal(["[[reply one]]", "one"], before.Select(m => (string)m!["content"]!));

        using var bad = await loop.Http.GetAsync($"/api/channels/{channel}/messages?latest=0");
        var problem = await LoopDaemon.ReadObjectAsync(bad, HttpStatusCode.BadRequest);
        Assert.Contains("limit must be between 1 and", (string)problem["detail"]!);
    }
}
