namespace Loop.Integration.Tests;

using System.Net;
using System.Text.Json.Nodes;
using Loop.Testing;
using Xunit;

/// <summary>/api/health's store check reads the database file as it is now: a store that breaks
/// while the daemon runs turns health degraded, with the reason for users and no stack trace.</summary>
public sealed class StoreHealthTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly System.Text.RegularExpressions.Regex StackFrame = new(@"\bat [\w.`<>\[\],]+\(");

    [Fact]
    public async Task A_deleted_database_file_turns_health_degraded_and_says_so()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var before = await loop.GetObjectAsync("/api/health");
        Assert.True((bool)before["store"]!["ok"]!);
        Assert.Equal("up", (string)before["components"]!["store"]!);

        // The daemon keeps the deleted file open and goes on answering from it: only the check
        // that looks at the path finds that nothing there will survive a restart.
        File.Delete(Path.Combine(loop.Home, "loop.db"));

        var health = await WaitForStoreDownAsync(loop, () => loop.GetObjectAsync("/api/health"));
        Assert.Equal("degraded", (string)health["status"]!);
        Assert.Equal("degraded", (string)health["components"]!["store"]!);
        Assert.Equal(Path.Combine(loop.Home, "loop.db"), (string)health["store"]!["location"]!);
        Assert.Equal("the database file is gone (deleted or moved while loop serve runs)", (string)health["store"]!["error"]!);
        Assert.DoesNotMatch(StackFrame, health.ToJsonString());
        Assert.Contains("cannot be read: the database file is gone", loop.Output);
    }

    [Fact]
    public async Task A_database_file_overwritten_with_garbage_turns_health_degraded_without_a_stack_trace()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };

        await File.WriteAllBytesAsync(Path.Combine(loop.Home, "loop.db"), Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 7 % 251)).ToArray());

        // Anonymous health needs no store, so it answers whatever the file holds.
        var health = await WaitForStoreDownAsync(loop, async () => JsonNode.Parse(await anonymous.GetStringAsync("/api/health"))!.AsObject());
        Assert.Equal("degraded", (string)health["status"]!);
        // Requests that need the store fail as problem details that point to the log, never a stack trace.
        foreach (var path in new[] { "/api/health", "/api/channels", $"/api/channels/{channel}/messages" })
        {
            using var response = await loop.Http.GetAsync(path);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.InternalServerError, $"{path}: {(int)response.StatusCode} {text}");
            Assert.DoesNotMatch(StackFrame, text);
            Assert.DoesNotContain("Exception", text);
            if (response.StatusCode == HttpStatusCode.InternalServerError)
            {
                Assert.Contains("the daemon's log has the details", (string)JsonNode.Parse(text)!["detail"]!);
            }
        }
        Assert.Contains("cannot be read: SQLite Error", loop.Output);
    }

    /// <summary>Reads health until its store check fails: the check runs again at most every few seconds.</summary>
    private static async Task<JsonObject> WaitForStoreDownAsync(LoopDaemon loop, Func<Task<JsonObject>> read)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            var health = await read();
            if ((string?)health["components"]!["store"] == "degraded")
            {
                return health;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"health still says the store is up: {health.ToJsonString()}\n{loop.Output}");
            }
            await Task.Delay(100);
        }
    }
}
