"""What a user does with boto3 against S3 and SQS, for the queue ingest tests (moto on loopback,
`WEIR_TEST_S3_ENDPOINT`). Prints JSON.

    python3 sqs_moto.py setup NAME          queues NAME, NAME.fifo, NAME-dead; bucket NAME with
                                            ObjectCreated notifications of `cities/` to NAME
    python3 sqs_moto.py put BUCKET KEY FILE upload a file
    python3 sqs_moto.py etag BUCKET KEY
    python3 sqs_moto.py send URL BODY [ATTRIBUTES_JSON [GROUP]]
    python3 sqs_moto.py drain URL           receive everything (bodies and attributes)
    python3 sqs_moto.py count URL           visible + in-flight messages
"""

import json
import os
import sys

import boto3

ENDPOINT = os.environ["WEIR_TEST_S3_ENDPOINT"]
ARGS = dict(endpoint_url=ENDPOINT, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test")
sqs = boto3.client("sqs", **ARGS)
s3 = boto3.client("s3", **ARGS)


def setup(name):
    dead = sqs.create_queue(QueueName=f"{name}-dead")["QueueUrl"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    fifo = sqs.create_queue(QueueName=f"{name}.fifo",
                            Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={
        "QueueConfigurations": [{
            "QueueArn": arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "cities/"}]}},
        }]})
    print(json.dumps({"queue": queue, "fifo": fifo, "dead": dead}))


def send(url, body, attributes="{}", group=None):
    extra = {}
    if group:
        extra = {"MessageGroupId": group, "MessageDeduplicationId": str(abs(hash(body)))}
    attributes = {k: {"DataType": "String", "StringValue": v} for k, v in json.loads(attributes).items()}
    sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes, **extra)
    print("{}")


def drain(url):
    found = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        for message in got:
            found.append({"body": message["Body"],
                          "attributes": {k: v.get("StringValue") for k, v in
                                         message.get("MessageAttributes", {}).items()}})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    print(json.dumps(found))


def count(url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    print(json.dumps({k: int(v) for k, v in attributes.items()}))


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "setup":
        setup(*rest)
    elif command == "put":
        bucket, key, path = rest
        with open(path, "rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body.read())
        print("{}")
    elif command == "etag":
        bucket, key = rest
        print(json.dumps({"etag": s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')}))
    elif command == "send":
        send(*rest)
    elif command == "drain":
        drain(*rest)
    elif command == "count":
        count(*rest)
