namespace Loop.Docker.Tests;

using global::Docker.DotNet.Models;
using Microsoft.Extensions.Logging.Abstractions;

[Collection(DockerCollection.Name)]
public sealed class ContainerReaperTests(DockerFixture docker)
{
    [Fact]
    public async Task Reaps_every_container_of_the_instance_and_nothing_else()
    {
        var mine = Guid.NewGuid().ToString("N");
        var other = Guid.NewGuid().ToString("N");
        var running = await CreateAsync(mine, start: true);
        var stopped = await CreateAsync(mine, start: false);
        var foreign = await CreateAsync(other, start: true);
        try
        {
            var reaper = new ContainerReaper(docker.Engine, NullLogger<ContainerReaper>.Instance);

            var removed = await reaper.ReapAsync(new Dictionary<string, string> { ["loop.instance"] = mine }, CancellationToken.None);

            Assert.Equal(2, removed);
            var (_, remaining) = await DockerFixture.DockerCliAsync("ps", "-a", "--no-trunc", "--format", "{{.ID}}");
            Assert.DoesNotContain(running, remaining);
            Assert.DoesNotContain(stopped, remaining);
            Assert.Contains(foreign, remaining);
            Assert.Equal(0, await reaper.ReapAsync(new Dictionary<string, string> { ["loop.instance"] = mine }, CancellationToken.None));
        }
        finally
        {
            await docker.Client.Containers.RemoveContainerAsync(foreign, new ContainerRemoveParameters { Force = true });
        }
    }

    [Fact]
    public async Task Refuses_an_empty_label_set_which_would_match_every_container()
    {
        var reaper = new ContainerReaper(docker.Engine, NullLogger<ContainerReaper>.Instance);

        await Assert.ThrowsAsync<ArgumentException>(() => reaper.ReapAsync(new Dictionary<string, string>(), CancellationToken.None));
    }

    private async Task<string> CreateAsync(string instance, bool start)
    {
        var id = (await docker.Client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = "loop-test-base:latest",
            Cmd = ["sleep", "60"],
            Labels = new Dictionary<string, string> { ["loop.instance"] = instance },
        })).ID;
        if (start)
        {
            await docker.Client.Containers.StartContainerAsync(id, new ContainerStartParameters());
        }

        return id;
    }
}
