namespace Loop.Docker.Tests;

using System.Net;
using System.Text;
using Loop.Docker.Engine;

[Collection(DockerCollection.Name)]
public sealed class DockerEngineClientTests(DockerFixture docker)
{
    [Fact]
    public async Task Ping_negotiates_the_servers_api_version_capped_at_1_43()
    {
        var (_, serverApi) = await DockerFixture.DockerCliAsync("version", "--format", "{{.Server.APIVersion}}");
        var expected = Version.Parse(serverApi.Trim()) < new Version(1, 43) ? serverApi.Trim() : "1.43";

        var version = await docker.Client.PingAsync(CancellationToken.None);

        Assert.Equal(expected, version);
    }

    [Fact]
    public void Endpoint_comes_from_DOCKER_HOST_when_not_given()
    {
        var before = Environment.GetEnvironmentVariable("DOCKER_HOST");
        try
        {
            Environment.SetEnvironmentVariable("DOCKER_HOST", "unix:///run/other/docker.sock");
            using var client = new DockerEngineClient();
            Assert.Equal("/run/other/docker.sock", client.SocketPath);
            Environment.SetEnvironmentVariable("DOCKER_HOST", null);
            using var fallback = new DockerEngineClient();
            Assert.Equal(DockerEngineClient.DefaultEndpoint, fallback.Endpoint);
            using var empty = new DockerEngineClient("");
            Assert.Equal(DockerEngineClient.DefaultEndpoint, empty.Endpoint);
        }
        finally
        {
            Environment.SetEnvironmentVariable("DOCKER_HOST", before);
        }
    }

    [Fact]
    public async Task Build_reports_progress_and_the_image_exists()
    {
        Assert.Contains(docker.BuildOutput, line => line.StartsWith("Step 1/3 : FROM loop-test-base:latest", StringComparison.Ordinal));
        Assert.Contains(docker.BuildOutput, line => line.Contains("Successfully tagged " + DockerFixture.TestImage, StringComparison.Ordinal));
        Assert.True(await docker.Client.ImageExistsAsync(DockerFixture.TestImage, CancellationToken.None));
        Assert.False(await docker.Client.ImageExistsAsync("loop-no-such-image:latest", CancellationToken.None));
    }

    [Fact]
    public async Task A_failing_build_step_throws_the_daemons_message()
    {
        var files = new Dictionary<string, byte[]> { ["Dockerfile"] = "FROM loop-test-base:latest\nRUN echo building; exit 7\n"u8.ToArray() };
        var progress = new List<string>();

        var error = await Assert.ThrowsAsync<DockerApiException>(() =>
            new ImageBuilder(docker.Client).BuildAsync("loop-docker-test-broken:latest", files, new Dictionary<string, string>(), progress.Add, CancellationToken.None));

        Assert.Contains("returned a non-zero code: 7", error.Message);
        Assert.Contains("building", progress);
    }

    [Fact]
    public async Task Build_args_reach_the_build()
    {
        var files = new Dictionary<string, byte[]> { ["Dockerfile"] = "FROM loop-test-base:latest\nARG GREETING=unset\nRUN echo \"greeting=$GREETING\"\n"u8.ToArray() };
        var progress = new List<string>();

        await new ImageBuilder(docker.Client).BuildAsync("loop-docker-test-args:latest", files, new Dictionary<string, string> { ["GREETING"] = "hola" }, progress.Add, CancellationToken.None);

        Assert.Contains("greeting=hola", progress);
        await DockerFixture.DockerCliAsync("rmi", "-f", "loop-docker-test-args:latest");
    }

    [Fact]
    public async Task Attach_writes_stdin_half_closes_it_and_demultiplexes_stdout_and_stderr()
    {
        var id = await docker.Client.CreateContainerAsync(new ContainerCreateRequest
        {
            Image = "loop-test-base:latest",
            Cmd = ["sh", "-c", "cat; echo to-stderr >&2"],
            AttachStdin = true,
            AttachStdout = true,
            AttachStderr = true,
            OpenStdin = true,
            StdinOnce = true,
        }, name: null, CancellationToken.None);
        try
        {
            using var attach = await docker.Client.AttachAsync(id, CancellationToken.None);
            await docker.Client.StartAsync(id, CancellationToken.None);
            await attach.WriteStdinAsync("hello\nworld\n"u8.ToArray(), CancellationToken.None);
            attach.CloseStdin();

            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            while (await attach.ReadFrameAsync(CancellationToken.None) is { } frame)
            {
                (frame.Stream == AttachStreamKind.Stdout ? stdout : stderr).Append(Encoding.UTF8.GetString(frame.Payload.Span));
            }

            Assert.Equal("hello\nworld\n", stdout.ToString());
            Assert.Equal("to-stderr\n", stderr.ToString());
            Assert.Equal(0, await docker.Client.WaitAsync(id, CancellationToken.None));
            var inspect = await docker.Client.InspectAsync(id, CancellationToken.None);
            Assert.False(inspect.State.Running);
            Assert.Equal(["sh", "-c", "cat; echo to-stderr >&2"], inspect.Config.Cmd);
        }
        finally
        {
            await docker.Client.RemoveAsync(id, force: true, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Engine_errors_carry_the_engines_message()
    {
        var missing = await Assert.ThrowsAsync<DockerApiException>(() => docker.Client.InspectAsync("loop-no-such-container", CancellationToken.None));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("No such container: loop-no-such-container", missing.Message);

        // Killing or removing what is already gone is not an error.
        await docker.Client.KillAsync("loop-no-such-container", CancellationToken.None);
        await docker.Client.RemoveAsync("loop-no-such-container", force: true, CancellationToken.None);
    }
}
