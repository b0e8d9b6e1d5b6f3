namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Loop.Testing;

/// <summary>The agent as an adversary: from inside its container, through the claude double's
/// <c>[[sh]]</c> directive, it attacks the daemon's endpoint and its own credential.</summary>
public sealed class ContainerEndpointTests
{
    [Fact]
    public async Task An_agent_can_neither_replace_the_daemons_socket_nor_change_what_the_daemon_handed_its_run()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var socketDir = Path.Combine(loop.Home, "run", "agent");
        var runFiles = Path.Combine(loop.Home, "run", "runs");

        await loop.PostMessageAsync(id,
            $"[[sh mv {socketDir}/loop.sock {socketDir}/moved.sock]] [[sh touch {socketDir}/planted.sock]] " +
            $"[[sh for f in {runFiles}/*/mcp-config.json; do echo '{{}}' > $f; done]] [[sh rm -rf {runFiles}/*]] " +
            $"[[sh cat {runFiles}/*/mcp-config.json]] [[mcp list_tasks {{}}]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var reply = (string)run["reply"]!;

        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Contains("mv: cannot move", reply);
        Assert.Contains("touch: cannot touch", reply);
        Assert.Contains("cannot create", reply);
        Assert.Contains("Read-only file system", reply);
        Assert.Contains("\"mcpServers\"", reply); // the config is as the daemon wrote it
        Assert.DoesNotContain("mcp error", reply);
        Assert.Equal(["loop.sock"], Directory.GetFileSystemEntries(socketDir).Select(Path.GetFileName));
        // What a run was handed is gone with it.
        Assert.Empty(Directory.GetFileSystemEntries(runFiles));

        // The next run still reaches the daemon through the same socket.
        await loop.PostMessageAsync(id, "[[mcp list_tasks {}]]");
        var next = (await loop.WaitForFinishedRunsAsync(id, 2)).Last();
        Assert.Equal("succeeded", (string)next["status"]!);
        Assert.DoesNotContain("mcp error", (string)next["reply"]!);
        Assert.Equal("ok", (string)(await loop.GetObjectAsync("/api/health"))["status"]!);
    }

    [Fact]
    public async Task A_runs_token_is_its_own_and_useless_once_the_run_has_ended()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;

        await loop.PostMessageAsync(id, "[[sh printf %s \"$LOOP_CHANNEL_TOKEN\" > token-1.txt]] [[mcp list_tasks {}]]");
        var first = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        await loop.PostMessageAsync(id, "[[sh printf %s \"$LOOP_CHANNEL_TOKEN\" > token-2.txt]]");
        await loop.WaitForFinishedRunsAsync(id, 2);

        Assert.DoesNotContain("mcp error", (string)first["reply"]!);
        var stolen = await File.ReadAllTextAsync(Path.Combine(project, "token-1.txt"));
        Assert.StartsWith("loopch.", stolen);
        Assert.NotEqual(stolen, await File.ReadAllTextAsync(Path.Combine(project, "token-2.txt")));
        using var socket = SocketClient(loop, stolen);
        using var tcp = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        tcp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", stolen);
        Assert.Equal(HttpStatusCode.Unauthorized, (await socket.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await tcp.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);
    }

    [Fact]
    public async Task An_operator_revokes_every_token_of_a_channel_at_once_and_no_other()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir("loop-proj-");
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var other = (string)(await loop.CreateChannelAsync())["id"]!;
        var scriptToken = (string)(await loop.GetObjectAsync($"/api/channels/{id}/token"))["token"]!;
        var otherToken = (string)(await loop.GetObjectAsync($"/api/channels/{other}/token"))["token"]!;

        await loop.PostMessageAsync(id, "[[sh printf %s \"$LOOP_CHANNEL_TOKEN\" > token.tmp && mv token.tmp token.txt]] [[sleep 120]]");
        var tokenFile = Path.Combine(project, "token.txt");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!File.Exists(tokenFile))
        {
            Assert.True(DateTime.UtcNow < deadline, "the agent never wrote its token\n" + loop.Output);
            await Task.Delay(100);
        }
        var runToken = await File.ReadAllTextAsync(tokenFile);
        using var asRun = SocketClient(loop, runToken);
        Assert.Equal(HttpStatusCode.OK, (await asRun.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);

        using var revoke = await loop.Http.DeleteAsync($"/api/channels/{id}/tokens");
        var revoked = await LoopDaemon.ReadObjectAsync(revoke, HttpStatusCode.OK);

        Assert.Equal(2, (int)revoked["revoked"]!);
        Assert.Equal(HttpStatusCode.Unauthorized, (await asRun.GetAsync($"/api/tasks?channel_id={id}")).StatusCode);
        foreach (var (token, expected) in new[] { (scriptToken, HttpStatusCode.Unauthorized), (otherToken, HttpStatusCode.OK) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/tasks?channel_id={(token == otherToken ? other : id)}");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
            Assert.Equal(expected, (await anonymous.SendAsync(request)).StatusCode);
        }
        var running = await loop.WaitForRunningAsync(id);
        using var cancel = await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
        Assert.True(cancel.IsSuccessStatusCode);
    }

    [Fact]
    public async Task Health_says_so_when_the_daemons_socket_is_gone()
    {
        await using var loop = await LoopDaemon.StartAsync(environment: new Dictionary<string, string?> { ["LOOP_RUNNER"] = "process" });
        File.Delete(Path.Combine(loop.Home, "run", "agent", "loop.sock"));

        var health = await loop.GetObjectAsync("/api/health");

        Assert.Equal("degraded", (string)health["status"]!);
        Assert.Contains(health["warnings"]!.AsArray(), w => ((string)w!).Contains("unix socket", StringComparison.Ordinal));
    }

    private static HttpClient SocketClient(LoopDaemon loop, string token)
    {
        var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(loop.Home, "run", "agent", "loop.sock")), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        })
        { BaseAddress = new Uri("http://localhost") };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
