namespace Loop.Integration.Tests;

using Loop.Testing;

/// <summary>Nothing accepted is lost when the daemon dies mid-run.</summary>
public sealed class RecoveryTests
{
    [Fact]
    public async Task After_a_crash_mid_run_the_run_is_failed_the_orphan_reaped_and_the_messages_run_again()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(id, "[[sleep 4]] [[reply survived]]");
        var interrupted = await loop.WaitForRunningAsync(id);
        string[] orphans = [];
        for (var i = 0; i < 100 && orphans.Length == 0; i++)
        {
            orphans = await DockerCli.ContainersAsync($"loop.run={interrupted["id"]}");
            await Task.Delay(50);
        }
        Assert.Single(orphans);

        await loop.KillAsync();
        Assert.Single(await DockerCli.ContainersAsync($"loop.run={interrupted["id"]}")); // still there: nobody reaped it yet

        await loop.RestartAsync();
        var runs = await loop.WaitForFinishedRunsAsync(id, 2);
        Assert.Equal(2, runs.Count);
        Assert.Equal((string)interrupted["id"]!, (string)runs[0]["id"]!);
        Assert.Equal("failed", (string)runs[0]["status"]!);
        Assert.Contains("interrupted", (string)runs[0]["error"]!);
        Assert.Equal("succeeded", (string)runs[1]["status"]!);
        Assert.Equal((string)runs[0]["prompt"]!, (string)runs[1]["prompt"]!);
        Assert.Contains("survived", (string)runs[1]["reply"]!);
        Assert.Empty(await DockerCli.ContainersAsync($"loop.run={interrupted["id"]}"));
        Assert.Contains("orphaned agent container", loop.Output);
    }
}
