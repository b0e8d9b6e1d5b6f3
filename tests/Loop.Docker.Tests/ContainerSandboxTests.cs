namespace Loop.Docker.Tests;

using System.Diagnostics;
using global::Docker.DotNet;
using global::Docker.DotNet.Models;
using Loop.Domain.Agents;

[Collection(DockerCollection.Name)]
public sealed class ContainerSandboxTests(DockerFixture docker)
{
    private static async Task<(SandboxExit Exit, List<string> Lines)> RunAsync(ContainerSandbox sandbox, SandboxSpec spec, CancellationToken cancellationToken = default)
    {
        var lines = new List<string>();
        var exit = await sandbox.RunAsync(spec, line => { lines.Add(line); return ValueTask.CompletedTask; }, null, cancellationToken);
        return (exit, lines);
    }

    [Fact]
    public async Task Stdout_lines_arrive_in_order_with_the_exit_code()
    {
        var (exit, lines) = await RunAsync(docker.Sandbox(), DockerFixture.Spec(["sh", "-c", "for i in $(seq 1 300); do echo line $i; done; printf 'h\\303\\251llo w\\303\\266rld\\nno newline at end'"]));

        Assert.Equal(0, exit.ExitCode);
        Assert.False(exit.TimedOut || exit.Cancelled || exit.OutOfMemory);
        Assert.Equal(Enumerable.Range(1, 300).Select(i => $"line {i}").Concat(["héllo wörld", "no newline at end"]), lines);
    }

    [Fact]
    public async Task A_long_line_spanning_many_frames_arrives_whole()
    {
        var (exit, lines) = await RunAsync(docker.Sandbox(), DockerFixture.Spec(["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' a; echo; echo after"]));

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(2, lines.Count);
        Assert.Equal(new string('a', 200000), lines[0]);
        Assert.Equal("after", lines[1]);
    }

    [Fact]
    public async Task A_failing_command_reports_its_exit_code_and_stderr_tail()
    {
        var (exit, lines) = await RunAsync(docker.Sandbox(), DockerFixture.Spec(["sh", "-c", "echo partial; head -c 20000 /dev/zero | tr '\\0' x >&2; echo '\nsomething broke' >&2; exit 3"]));

        Assert.Equal(3, exit.ExitCode);
        Assert.Equal(["partial"], lines);
        Assert.EndsWith("something broke\n", exit.StandardErrorTail);
        Assert.InRange(exit.StandardErrorTail.Length, 8000, 8192);
        Assert.False(exit.TimedOut || exit.Cancelled || exit.OutOfMemory);
    }

    [Fact]
    public async Task Secrets_reach_the_process_but_not_docker_inspect()
    {
        const string secret = "sk-test-7f3a9c1e5b";
        var shared = DockerFixture.TempDir();
        var spec = DockerFixture.Spec(
            ["sh", "-c", "echo \"secret=$SECRET_X other=$OTHER\"; while [ ! -e /shared/go ]; do sleep 0.1; done"],
            secrets: new Dictionary<string, string> { ["SECRET_X"] = secret, ["OTHER"] = "a b=c" },
            mounts: [new BindMount(shared, "/shared", ReadOnly: false)]);
        ContainerInspectResponse? inspect = null;
        string cliInspect = "";
        string? startedId = null;

        var exit = await docker.Sandbox().RunAsync(spec, async line =>
        {
            Assert.Equal($"secret={secret} other=a b=c", line);
            // The container is still running here: look at it from outside, as an attacker with docker access would.
            inspect = await docker.Client.Containers.InspectContainerAsync(startedId!, CancellationToken.None);
            (_, cliInspect) = await DockerFixture.DockerCliAsync("inspect", startedId!);
            await File.WriteAllTextAsync(Path.Combine(shared, "go"), "");
        }, id => startedId = id, CancellationToken.None);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(startedId, exit.ContainerId);
        Assert.NotNull(inspect);
        Assert.True(inspect.State!.Running);
        Assert.Equal(["HOME=/home/agent"], inspect.Config!.Env.Where(e => e.StartsWith("HOME=", StringComparison.Ordinal)));
        Assert.DoesNotContain(inspect.Config.Env, e => e.Contains(secret, StringComparison.Ordinal) || e.StartsWith("SECRET_X", StringComparison.Ordinal));
        Assert.DoesNotContain(inspect.Config.Cmd, a => a.Contains(secret, StringComparison.Ordinal));
        Assert.DoesNotContain(inspect.Args, a => a.Contains(secret, StringComparison.Ordinal));
        Assert.Contains("\"HOME=/home/agent\"", cliInspect);
        Assert.DoesNotContain(secret, cliInspect);
    }

    [Fact]
    public async Task The_container_is_locked_down_and_labelled()
    {
        var shared = DockerFixture.TempDir();
        var spec = DockerFixture.Spec(
            ["sh", "-c", "echo up; while [ ! -e /shared/go ]; do sleep 0.1; done"],
            mounts: [new BindMount(shared, "/shared", ReadOnly: false)],
            labels: new Dictionary<string, string> { ["loop.instance"] = "labels-test", ["loop.channel"] = "c1" });
        ContainerInspectResponse? inspect = null;
        IList<ContainerListResponse> listed = [];

        var exit = await docker.Sandbox().RunAsync(spec, async _ =>
        {
            listed = await docker.ContainersLabelledAsync("loop.instance", "labels-test");
            inspect = await docker.Client.Containers.InspectContainerAsync(listed.Single().ID, CancellationToken.None);
            await File.WriteAllTextAsync(Path.Combine(shared, "go"), "");
        }, null, CancellationToken.None);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(exit.ContainerId, Assert.Single(listed).ID);
        Assert.NotNull(inspect);
        Assert.Equal("labels-test", inspect.Config!.Labels["loop.instance"]);
        Assert.Equal("c1", inspect.Config.Labels["loop.channel"]);
        Assert.Equal("1000:1000", inspect.Config.User);
        Assert.Equal("/tmp", inspect.Config.WorkingDir);
        Assert.Equal(256L * 1024 * 1024, inspect.HostConfig!.Memory);
        Assert.Equal(inspect.HostConfig.Memory, inspect.HostConfig.MemorySwap);
        Assert.Equal(1_000_000_000L, inspect.HostConfig.NanoCPUs);
        Assert.Equal(128L, inspect.HostConfig.PidsLimit);
        Assert.True(inspect.HostConfig.ReadonlyRootfs);
        Assert.Equal(["ALL"], inspect.HostConfig.CapDrop);
        Assert.Equal(["no-new-privileges"], inspect.HostConfig.SecurityOpt);
    }

    [Fact]
    public async Task The_container_is_removed_after_the_run()
    {
        var spec = DockerFixture.Spec(["true"]);

        var (exit, _) = await RunAsync(docker.Sandbox(), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Empty(await docker.ContainersLabelledAsync("loop.run", spec.RunId));
        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => docker.Client.Containers.InspectContainerAsync(exit.ContainerId!, CancellationToken.None));
    }

    [Fact]
    public async Task A_timeout_kills_the_container_and_reports_TimedOut()
    {
        var spec = DockerFixture.Spec(["sh", "-c", "echo started; sleep 60"], timeout: TimeSpan.FromSeconds(2));
        var clock = Stopwatch.StartNew();

        var (exit, lines) = await RunAsync(docker.Sandbox(), spec);

        Assert.True(exit.TimedOut);
        Assert.False(exit.Cancelled);
        Assert.Equal(137, exit.ExitCode);
        Assert.Equal(["started"], lines);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(20));
        Assert.Empty(await docker.ContainersLabelledAsync("loop.run", spec.RunId));
    }

    [Fact]
    public async Task Cancellation_kills_the_container_and_reports_Cancelled()
    {
        var spec = DockerFixture.Spec(["sh", "-c", "echo ready; sleep 60"]);
        using var cts = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();

        var exit = await docker.Sandbox().RunAsync(spec, line =>
        {
            if (line == "ready")
            {
                cts.Cancel();
            }

            return ValueTask.CompletedTask;
        }, null, cts.Token);

        Assert.True(exit.Cancelled);
        Assert.False(exit.TimedOut);
        Assert.Equal(137, exit.ExitCode);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(20));
        Assert.Empty(await docker.ContainersLabelledAsync("loop.run", spec.RunId));
    }

    [Fact]
    public async Task Exceeding_the_memory_limit_reports_OutOfMemory()
    {
        // tail holds the whole newline-free 200 MB "line" in memory.
        var (exit, _) = await RunAsync(docker.Sandbox(memoryMb: 32), DockerFixture.Spec(["sh", "-c", "head -c 200m /dev/zero | tail"]));

        Assert.True(exit.OutOfMemory);
        Assert.NotEqual(0, exit.ExitCode);
    }

    [Fact]
    public async Task The_root_filesystem_is_read_only_but_HOME_and_tmp_are_writable()
    {
        var (exit, lines) = await RunAsync(docker.Sandbox(), DockerFixture.Spec(["sh", "-c",
            "echo home=$HOME; echo h > $HOME/file && cat $HOME/file; mkdir -p $HOME/.claude && echo made; " +
            "echo t > /tmp/file && cat /tmp/file; stat -c 'owner=%u:%g' $HOME; " +
            "if echo x > /etc/loop-test 2>/dev/null; then echo etc-writable; else echo etc-read-only; fi"]));

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["home=/home/agent", "h", "made", "t", "owner=1000:1000", "etc-read-only"], lines);
    }

    [Fact]
    public async Task Without_a_configured_user_the_daemons_own_uid_and_gid_are_used_unless_that_is_root()
    {
        var spec = DockerFixture.Spec(["sh", "-c", "id -u; id -g; echo ok > $HOME/f && cat $HOME/f"]);
        var (_, uid) = await RunHostAsync("id", "-u");
        var (_, gid) = await RunHostAsync("id", "-g");
        if (uid.Trim() == "0")
        {
            var refused = await Assert.ThrowsAsync<SandboxUnavailableException>(() => RunAsync(docker.Sandbox(user: null), spec));
            Assert.Contains("never run as root", refused.Message);
            return;
        }

        var (exit, lines) = await RunAsync(docker.Sandbox(user: null), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal([uid.Trim(), gid.Trim(), "ok"], lines);
    }

    [Fact]
    public async Task The_runs_own_user_wins_over_the_sandboxs_and_owns_HOME()
    {
        var spec = DockerFixture.Spec(["sh", "-c", "id -u; id -g; stat -c '%u:%g' $HOME"]) with { User = "1234:2345" };

        var (exit, lines) = await RunAsync(docker.Sandbox(user: "1000:1000"), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["1234", "2345", "1234:2345"], lines);
    }

    [Theory]
    [InlineData("0:0", null)]
    [InlineData("1000:1000", "0:1000")]
    [InlineData("root", null)]
    public async Task A_container_never_runs_as_root_and_none_is_made(string sandboxUser, string? runUser)
    {
        var spec = DockerFixture.Spec(["id", "-u"]) with { User = runUser };

        var refused = await Assert.ThrowsAsync<SandboxUnavailableException>(() => RunAsync(docker.Sandbox(user: sandboxUser), spec));

        Assert.Contains("never run as root", refused.Message);
        Assert.Empty(await docker.ContainersLabelledAsync("loop.run", spec.RunId));
    }

    [Fact]
    public async Task The_input_follows_the_secrets_on_stdin_and_then_stdin_ends()
    {
        var spec = DockerFixture.Spec(["sh", "-c", "echo \"secret=$S\"; cat; echo after-end-of-file"],
            secrets: new Dictionary<string, string> { ["S"] = "s-1" }, input: "line one\nh\u00e9llo, --not-an-option\n");

        var (exit, lines) = await RunAsync(docker.Sandbox(), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["secret=s-1", "line one", "h\u00e9llo, --not-an-option", "after-end-of-file"], lines);
    }

    [Fact]
    public async Task A_large_input_is_written_whole_while_the_command_already_writes_output()
    {
        // cat echoes as it reads: 1 MB back and forth fills every pipe and socket buffer on the way,
        // so the input must be written while the output is read.
        var input = string.Concat(Enumerable.Range(1, 20_000).Select(i => $"{i:D8} {new string('x', 40)}\n"));
        var spec = DockerFixture.Spec(["sh", "-c", "cat; echo done"], input: input);

        var (exit, lines) = await RunAsync(docker.Sandbox(), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(20_001, lines.Count);
        Assert.Equal(input, string.Concat(lines.Take(20_000).Select(l => l + "\n")));
        Assert.Equal("done", lines[^1]);
    }

    [Fact]
    public async Task Bind_mounts_honour_read_only()
    {
        var writable = DockerFixture.TempDir();
        var readOnly = DockerFixture.TempDir();
        await File.WriteAllTextAsync(Path.Combine(readOnly, "given.txt"), "from host");
        var spec = DockerFixture.Spec(
            ["sh", "-c", "pwd; echo written > /work/out.txt && echo rw-ok; cat /ro/given.txt; echo; if echo x > /ro/new.txt 2>/dev/null; then echo ro-writable; else echo ro-denied; fi"],
            mounts: [new BindMount(writable, "/work", ReadOnly: false), new BindMount(readOnly, "/ro", ReadOnly: true)],
            workDir: "/work");

        var (exit, lines) = await RunAsync(docker.Sandbox(), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["/work", "rw-ok", "from host", "ro-denied"], lines);
        Assert.Equal("written\n", await File.ReadAllTextAsync(Path.Combine(writable, "out.txt")));
        Assert.False(File.Exists(Path.Combine(readOnly, "new.txt")));
    }

    [Fact]
    public async Task Supplementary_groups_are_added()
    {
        var spec = DockerFixture.Spec(["id", "-G"]) with { SupplementaryGroups = [4242, 4343] };

        var (exit, lines) = await RunAsync(docker.Sandbox(), spec);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("1000 4242 4343", Assert.Single(lines));
    }

    [Fact]
    public async Task A_missing_image_is_a_SandboxUnavailableException_naming_the_image()
    {
        var error = await Assert.ThrowsAsync<SandboxUnavailableException>(() =>
            RunAsync(docker.Sandbox(image: "loop-missing-image:latest"), DockerFixture.Spec(["true"])));

        Assert.StartsWith("image loop-missing-image:latest not found: ", error.Message);
    }

    [Fact]
    public async Task An_unreachable_engine_is_a_SandboxUnavailableException_saying_what_to_do()
    {
        using var engine = new DockerEngine(new DockerEndpoint("unix:///tmp/loop-no-docker-here.sock"));

        var ping = await Assert.ThrowsAsync<DockerUnavailableException>(() => engine.PingAsync(CancellationToken.None));
        var run = await Assert.ThrowsAsync<SandboxUnavailableException>(() => RunAsync(docker.Sandbox(engine: engine), DockerFixture.Spec(["true"])));

        Assert.StartsWith("Docker engine not reachable at unix:///tmp/loop-no-docker-here.sock: ", ping.Message);
        Assert.StartsWith("Docker engine not reachable at unix:///tmp/loop-no-docker-here.sock: ", run.Message);
        Assert.EndsWith("; start Docker or set runner to process", run.Message);
    }

    private static async Task<(int, string)> RunHostAsync(string file, string arg)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arg) { RedirectStandardOutput = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }
}
